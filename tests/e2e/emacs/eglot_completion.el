;;; eglot_completion.el --- drive eglot against codellama-ls in batch mode  -*- lexical-binding: t -*-

;; Run by tests/test_emacs_eglot.py:
;;   emacs --batch -l tests/emacs/eglot_completion.el
;; Environment: CODELLAMA_LS_TEST_SNIPPET (editors/emacs/codellama-ls-eglot.el),
;; CODELLAMA_LS_TEST_PYTHON (interpreter with codellama_ls),
;; CODELLAMA_LS_TEST_MODEL (tiny model folder), CODELLAMA_LS_TEST_DIR (folder with the
;; Python files to open), CODELLAMA_LS_TEST_CASES (FILE:LINE:COL,... 1-based line,
;; 0-based column), CODELLAMA_LS_TEST_RESULT (JSON report written here).
;;
;; For every case: ask the server for its suggestion (textDocument/inlineCompletion),
;; collect the candidates eglot's completion-at-point function offers, then run
;; `completion-at-point' and record the buffer.  The Python side does the asserting.

(require 'eglot)
(require 'json)
(require 'python)

(defun clt--env (name)
  (or (getenv name) (error "%s is not set" name)))

(defvar clt-python (clt--env "CODELLAMA_LS_TEST_PYTHON"))
(defvar clt-model (clt--env "CODELLAMA_LS_TEST_MODEL"))
(defvar clt-dir (file-name-as-directory (clt--env "CODELLAMA_LS_TEST_DIR")))

(setq eglot-sync-connect t
      eglot-connect-timeout 120
      eglot-autoshutdown nil
      eglot-events-buffer-size 0
      python-indent-guess-indent-offset nil)

;; What a user puts in their init file (editors/emacs/README.md). `:suggestions 1': one candidate,
;; which `completion-at-point' inserts at once (with several it lists them).
(setq codellama-ls-command (list clt-python "-m" "codellama_ls")
      codellama-ls-initialization-options (list :model clt-model :maxNewTokens 8 :suggestions 1))
(load (clt--env "CODELLAMA_LS_TEST_SNIPPET") nil t)

(defun clt--eglot-version ()
  (or (ignore-errors
        (require 'lisp-mnt)
        (with-temp-buffer
          (insert-file-contents (find-library-name "eglot"))
          (lm-version)))
      "unknown"))

(defun clt--wait-ready (server)
  "Poll `codellama/status' until the model is loaded."
  (let ((deadline (+ (float-time) 120)) state)
    (while (not (member state '("ready" "failed")))
      (when (> (float-time) deadline)
        (error "server state stayed %s" state))
      (setq state (plist-get (jsonrpc-request server :codellama/status (make-hash-table)) :state))
      (unless (member state '("ready" "failed"))
        (accept-process-output nil 0.1)))
    state))

(defun clt--server-suggestion (server)
  "The server's suggestion at point, from textDocument/inlineCompletion."
  (let* ((answer (jsonrpc-request
                  server :textDocument/inlineCompletion
                  (append (eglot--TextDocumentPositionParams) '(:context (:triggerKind 2)))))
         (items (append (plist-get answer :items) nil)))
    (and items (plist-get (car items) :insertText))))

(defun clt--candidates ()
  "What eglot's completion-at-point function offers here: (PROBE . CANDIDATES)."
  (pcase-let* ((`(,start ,_end ,table . ,_props) (eglot-completion-at-point))
               (probe (buffer-substring-no-properties start (point))))
    (cons probe
          (mapcar (lambda (proxy)
                    (let* ((item (get-text-property 0 'eglot--lsp-item proxy))
                           (edit (plist-get item :textEdit)))
                      `((label . ,(substring-no-properties proxy))
                        (newText . ,(plist-get edit :newText))
                        (filterText . ,(plist-get item :filterText)))))
                  (all-completions probe table)))))

(defun clt--run-case (spec server)
  (pcase-let* ((`(,file ,line ,col) (split-string spec ":")))
    (with-current-buffer (find-file-noselect (expand-file-name file clt-dir))
      (unless (eglot-current-server) (error "eglot does not manage %s" file))
      (goto-char (point-min))
      (forward-line (1- (string-to-number line)))
      (forward-char (string-to-number col))
      (let* ((before (buffer-substring-no-properties (point-min) (point-max)))
             (offset (1- (point)))
             (expected (clt--server-suggestion server))
             (cands (clt--candidates))
             (completed (and (completion-at-point) t)))
        `((file . ,file)
          (offset . ,offset)
          (expected . ,expected)
          (probe . ,(car cands))
          (candidates . ,(vconcat (cdr cands)))
          (completed . ,(if completed t :json-false))
          (before . ,before)
          (after . ,(buffer-substring-no-properties (point-min) (point-max))))))))

(defun clt--warm-requests (server)
  (let* ((status (jsonrpc-request server :codellama/status (make-hash-table))))
    (plist-get (plist-get (plist-get status :decode) :warm) :requests)))

(defun clt--warm (server file)
  "A command moves point in FILE; the idle timer it starts sends `codellama/warm'."
  (with-current-buffer (find-file-noselect (expand-file-name file clt-dir))
    (switch-to-buffer (current-buffer))
    (let ((before (clt--warm-requests server))
          (hooked (and (memq #'codellama-ls--post-command post-command-hook) t))
          timer after (deadline (+ (float-time) 30)))
      (goto-char (point-min))
      (forward-line 1)
      (end-of-line)
      (run-hooks 'post-command-hook)   ; what the command loop does after a command
      (setq timer codellama-ls--warm-timer)
      ;; Batch Emacs is never idle: run the idle timer as the command loop would.
      (when timer (timer-event-handler timer))
      (while (and (equal (setq after (clt--warm-requests server)) before) (< (float-time) deadline))
        (accept-process-output nil 0.05))
      ;; The same place again sends nothing more.
      (run-hooks 'post-command-hook)
      (when codellama-ls--warm-timer (timer-event-handler codellama-ls--warm-timer))
      `((hooked . ,(if hooked t :json-false))
        (idle . ,(if (and timer (aref timer 7)) t :json-false))
        (before . ,before)
        (after . ,after)
        (again . ,(progn (accept-process-output nil 0.3) (clt--warm-requests server)))))))

(let* ((cases (split-string (clt--env "CODELLAMA_LS_TEST_CASES") ","))
       (first (car (split-string (car cases) ":")))
       server state results warm)
  (with-current-buffer (find-file-noselect (expand-file-name first clt-dir))
    (apply #'eglot (eglot--guess-contact))
    (setq server (eglot-current-server))
    (unless server (error "eglot did not connect"))
    (setq state (clt--wait-ready server)))
  (setq results (mapcar (lambda (spec) (clt--run-case spec server)) cases))
  (setq warm (clt--warm server first))
  (with-temp-file (clt--env "CODELLAMA_LS_TEST_RESULT")
    (insert (json-encode `((eglot . ,(clt--eglot-version))
                           (emacs . ,emacs-version)
                           (state . ,state)
                           (warm . ,warm)
                           (cases . ,(vconcat results))))))
  (eglot-shutdown server))

;;; eglot_completion.el ends here
