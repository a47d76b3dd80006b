;;; codellama-ls-eglot.el --- Code Llama completions in Emacs through eglot  -*- lexical-binding: t -*-

;; Copy this into your init file, or load it:  (load "/path/to/codellama-ls-eglot.el")
;; To change a variable, `setq' it before this file is loaded.
;; Works with eglot 1.9 (Debian's elpa-eglot on Emacs 28) and the eglot built into Emacs 29+.

(defvar codellama-ls-command '("codellama-ls")
  "Program and arguments that start the server, e.g. (\"~/venv/bin/codellama-ls\").")

(defvar codellama-ls-modes '(python-mode python-ts-mode)
  "Major modes whose buffers get Code Llama completions.
eglot runs one server per buffer: these modes use codellama-ls instead of any other
server listed for them in `eglot-server-programs'.")

(defvar codellama-ls-initialization-options
  '(:model "codellama/CodeLlama-7b-hf" :maxNewTokens 64)
  "Server settings, sent as initializationOptions.
Keys are the camelCase setting names of codellama-ls (:maxNewTokens, :debounceMs,
:fimFormat, :engine, :url, :enable ...); use :json-false for false.  Settings left out
keep the server's defaults, CODELLAMA_LS_* environment variables and flags.")

(with-eval-after-load 'eglot
  (add-to-list 'eglot-server-programs
               (cons codellama-ls-modes
                     (append codellama-ls-command
                             (list :initializationOptions codellama-ls-initialization-options)))))

;; Start the server when such a buffer is visited (or use M-x eglot by hand).
(dolist (mode codellama-ls-modes)
  (add-hook (intern (format "%s-hook" mode)) #'eglot-ensure))

;;; Warm ahead: when Emacs has been idle for `codellama-ls-warm-delay' seconds after a command,
;;; tell the server where point rests (the `codellama/warm' notification), so it computes that
;;; place's prompt while you read: the first suggestion there skips the long prefill.

(defvar codellama-ls-warm-delay 0.3
  "Idle seconds after a command before telling the server where point rests; nil: never.")

(defvar codellama-ls--warm-timer nil
  "The idle timer of the last command (one for all buffers).")

(defvar-local codellama-ls--warm-place nil
  "The text version and point last sent: the same place is sent once.")

(defun codellama-ls--warm (buffer)
  "Send `codellama/warm' for point in BUFFER if it is still the selected one."
  (setq codellama-ls--warm-timer nil)
  (when (and (buffer-live-p buffer) (eq buffer (window-buffer (selected-window))))
    (with-current-buffer buffer
      (let ((server (and (bound-and-true-p eglot--managed-mode) (eglot-current-server)))
            (place (cons (buffer-chars-modified-tick) (point))))
        (when (and server (not (use-region-p)) (not (equal place codellama-ls--warm-place)))
          (setq codellama-ls--warm-place place)
          (eglot--signal-textDocument/didChange) ; the server must know the text point is in
          (jsonrpc-notify server :codellama/warm (eglot--TextDocumentPositionParams)))))))

(defun codellama-ls--post-command ()
  "Restart the idle timer after every command in a buffer eglot manages."
  (when codellama-ls--warm-timer
    (cancel-timer codellama-ls--warm-timer)
    (setq codellama-ls--warm-timer nil))
  (when codellama-ls-warm-delay
    (setq codellama-ls--warm-timer
          (run-with-idle-timer codellama-ls-warm-delay nil #'codellama-ls--warm (current-buffer)))))

(defun codellama-ls--warm-setup ()
  "Follow point in buffers of `codellama-ls-modes' while eglot manages them."
  (if (and (bound-and-true-p eglot--managed-mode) (apply #'derived-mode-p codellama-ls-modes))
      (add-hook 'post-command-hook #'codellama-ls--post-command nil t)
    (remove-hook 'post-command-hook #'codellama-ls--post-command t)))

(add-hook 'eglot-managed-mode-hook #'codellama-ls--warm-setup)

;;; Code actions (Code Llama - Instruct).  Docstrings, unit tests and fixes come with
;;; M-x eglot-code-actions; these two commands add Edit and Explain.

(defvar codellama-ls-action-timeout 600
  "Seconds to wait for Edit and Explain: the model writes up to instructMaxNewTokens tokens.")

(defvar codellama-ls-last-explanation nil
  "The markdown of the last `codellama-ls-explain'.")

(defun codellama-ls--range ()
  "The region, or point, as an LSP range."
  (require 'eglot)
  (let ((beg (if (use-region-p) (region-beginning) (point)))
        (end (if (use-region-p) (region-end) (point))))
    (list :start (eglot--pos-to-lsp-position beg) :end (eglot--pos-to-lsp-position end))))

(defun codellama-ls--command (command argument)
  "Run the server's COMMAND with ARGUMENT (a plist) and return its answer."
  (eglot--signal-textDocument/didChange)  ; eglot sends changes when idle: the server must see them first
  (jsonrpc-request (eglot--current-server-or-lose) :workspace/executeCommand
                   (list :command command :arguments (vector argument))
                   :timeout codellama-ls-action-timeout))

(defun codellama-ls-edit (instruction)
  "Rewrite the region (or the line at point) as INSTRUCTION says; the server sends the edit."
  (interactive "sCode Llama, edit: ")
  (codellama-ls--command "codellama.edit"
                         (list :uri (plist-get (eglot--TextDocumentIdentifier) :uri)
                               :range (codellama-ls--range)
                               :instruction instruction)))

(defun codellama-ls-explain ()
  "Explain the region (or the function at point) in a help window, as markdown."
  (interactive)
  (let* ((answer (codellama-ls--command "codellama.explain"
                                        (list :uri (plist-get (eglot--TextDocumentIdentifier) :uri)
                                              :range (codellama-ls--range))))
         (markdown (and (listp answer) (plist-get answer :markdown))))
    (when markdown
      (setq codellama-ls-last-explanation markdown)
      (with-help-window "*Code Llama*"
        (princ markdown)))))

;;; codellama-ls-eglot.el ends here
