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

;;; codellama-ls-eglot.el ends here
