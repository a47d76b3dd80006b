;;; eglot_actions.el --- code actions through eglot against codellama-ls in batch mode  -*- lexical-binding: t -*-

;; Run by tests/e2e/test_emacs_actions.py:  emacs --batch -l tests/e2e/emacs/eglot_actions.el
;; Environment: CODELLAMA_LS_TEST_SNIPPET (editors/emacs/codellama-ls-eglot.el),
;; CODELLAMA_LS_TEST_PYTHON, CODELLAMA_LS_TEST_URL (the stand-in TGI server),
;; CODELLAMA_LS_TEST_TOKENIZER, CODELLAMA_LS_TEST_FILE (geometry.py to open),
;; CODELLAMA_LS_TEST_RESULT (JSON report written here).
;;
;; The docstring action goes through eglot's own code-action path (eglot 1.9 cannot resolve,
;; so it runs the action's command and applies the server's workspace/applyEdit); Explain and
;; Edit through the snippet's commands.  The Python side does the asserting.

(require 'eglot)
(require 'json)
(require 'python)

(defun cla--env (name)
  (or (getenv name) (error "%s is not set" name)))

(setq eglot-sync-connect t
      eglot-connect-timeout 120
      eglot-autoshutdown nil
      eglot-events-buffer-size 0
      eglot-confirm-server-initiated-edits nil
      python-indent-guess-indent-offset nil)

(setq codellama-ls-command (list (cla--env "CODELLAMA_LS_TEST_PYTHON") "-m" "codellama_ls")
      codellama-ls-initialization-options
      (list :engine "tgi" :url (cla--env "CODELLAMA_LS_TEST_URL")
            :tokenizer (cla--env "CODELLAMA_LS_TEST_TOKENIZER") :debounceMs 0))
(load (cla--env "CODELLAMA_LS_TEST_SNIPPET") nil t)

(defun cla--wait (what predicate)
  (let ((deadline (+ (float-time) 60)))
    (while (not (funcall predicate))
      (when (> (float-time) deadline)
        (error "gave up waiting for %s" what))
      (accept-process-output nil 0.05))))

(defun cla--text ()
  (buffer-substring-no-properties (point-min) (point-max)))

(let (server titles docstring explained edited)
  (with-current-buffer (find-file-noselect (cla--env "CODELLAMA_LS_TEST_FILE"))
    (apply #'eglot (eglot--guess-contact))
    (setq server (eglot-current-server))
    (unless server (error "eglot did not connect"))
    (cla--wait "the server" (lambda ()
                              (equal (plist-get (jsonrpc-request server :codellama/status (make-hash-table)) :state)
                                     "ready")))
    ;; Write docstring: listed by eglot-code-actions, run the way eglot runs a chosen action.
    (goto-char (point-min))
    (forward-line 3)
    (forward-char 5)
    (let* ((actions (eglot-code-actions (point) nil nil nil))
           (kind "refactor.rewrite.codellama.docstring")
           (action (seq-find (lambda (a) (equal (plist-get a :kind) kind)) actions))
           (before (cla--text)))
      (setq titles (mapcar (lambda (a) (plist-get a :title)) actions))
      (eglot--read-execute-code-action (list action) server kind)
      (cla--wait "the docstring" (lambda () (not (equal (cla--text) before))))
      (setq docstring (cla--text)))
    ;; Explain the function at point.
    (codellama-ls-explain)
    (setq explained codellama-ls-last-explanation)
    ;; Edit the region: the def line through the return line.
    (transient-mark-mode 1)
    (goto-char (point-min))
    (forward-line 3)
    (push-mark (point) t t)
    (goto-char (point-max))
    (skip-chars-backward "\n")
    (codellama-ls-edit "use math.hypot")
    (setq edited (cla--text)))
  (with-temp-file (cla--env "CODELLAMA_LS_TEST_RESULT")
    (insert (json-encode `((titles . ,(vconcat titles))
                           (docstring . ,docstring)
                           (explained . ,explained)
                           (edited . ,edited)))))
  (eglot-shutdown server))

;;; eglot_actions.el ends here
