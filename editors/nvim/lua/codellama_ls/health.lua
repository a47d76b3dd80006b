-- :checkhealth codellama_ls — is the server there, which model, what state is it in.
local M = {}

local DEFAULT_MODEL = "codellama/CodeLlama-7b-hf" -- the server's default (codellama_ls/config.py)

local function present(value)
  return value ~= nil and value ~= vim.NIL and value ~= ""
end

function M.check()
  local health = vim.health
  local plugin = require("codellama_ls")
  local cfg = plugin.config

  health.start("codellama_ls: Neovim")
  if vim.fn.has("nvim-0.11") == 1 then
    local v = vim.version()
    health.ok(("Neovim %d.%d.%d"):format(v.major, v.minor, v.patch))
  else
    health.error("Neovim 0.11 or newer is needed")
  end
  health.info(plugin.native() and "ghost text: vim.lsp.inline_completion (built in)" or "ghost text: this plugin")

  health.start("codellama_ls: server")
  local cmd = cfg.cmd or { "codellama-ls" }
  local exe = type(cmd) == "table" and vim.fn.exepath(cmd[1]) or ""
  if type(cmd) ~= "table" then
    health.info("server command: a Lua function (not checked)")
  elseif exe ~= "" then
    health.ok(("server executable found: %s"):format(exe))
    health.info("command: " .. table.concat(cmd, " "))
  else
    health.error(("server executable not found: %s"):format(cmd[1]), {
      "pip install codellama-ls (in the Python environment on PATH)",
      'or point setup({ cmd = { "/path/to/python", "-m", "codellama_ls" } }) at it',
    })
  end

  local model = cfg.settings.model or vim.env.CODELLAMA_LS_MODEL
  if model then
    health.ok("model setting: " .. model)
  else
    health.info(("model setting: not set, the server uses %s"):format(DEFAULT_MODEL))
  end

  local clients = vim.lsp.get_clients({ name = plugin.name })
  if #clients == 0 then
    health.warn("server not running", {
      ("open a file of one of these filetypes to start it: %s"):format(table.concat(cfg.filetypes, ", ")),
    })
    return
  end
  local st, err = plugin.status(nil, 5000)
  if not st then
    health.error("server does not answer codellama/status: " .. tostring(err))
    return
  end
  local where = ("engine %s, model %s"):format(st.engine or "?", present(st.model) and st.model or "?")
  if st.state == "ready" then
    health.ok(("server state: ready (%s)"):format(where))
  elseif st.state == "loading" or st.state == "idle" then
    health.warn(("server state: %s (%s); suggestions start once the model is loaded"):format(st.state, where))
  else
    health.error(("server state: %s (%s)"):format(tostring(st.state), where), present(st.error) and { st.error } or nil)
  end
  if st.enabled == false then
    health.warn("suggestions are turned off (:CodeLlama toggle)")
  end
  local last = st.last
  if type(last) == "table" then
    health.info(
      ("%d generation(s); last: %s new tokens, stopped by %s, %.3f s"):format(
        st.generations or 0,
        tostring(last.newTokens),
        tostring(last.stopReason),
        tonumber(last.seconds) or 0
      )
    )
  else
    health.info("no generation yet")
  end
end

return M
