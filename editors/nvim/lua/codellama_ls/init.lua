-- codellama-ls for Neovim >= 0.11: starts the server through `vim.lsp.config`/`vim.lsp.enable`
-- and shows its `textDocument/inlineCompletion` answers as ghost text.
--
--   require("codellama_ls").setup({ settings = { model = "codellama/CodeLlama-7b-hf" } })
local instruct = require("codellama_ls.actions")
local ghost = require("codellama_ls.ghost")
local text = require("codellama_ls.text")
local warm = require("codellama_ls.warm")

local api = vim.api
local NAME = "codellama_ls"
local STATUS_METHOD = "codellama/status"

local M = { name = NAME }

local defaults = {
  -- How to start the server; the default needs `codellama-ls` on PATH.
  cmd = nil, ---@type string[]?
  filetypes = {
    "c", "cpp", "cs", "css", "go", "html", "java", "javascript", "javascriptreact", "json",
    "kotlin", "lua", "markdown", "php", "python", "ruby", "rust", "scala", "sh", "sql", "swift",
    "toml", "typescript", "typescriptreact", "yaml", "zig",
  },
  root_markers = { ".git" },
  -- Server settings, camelCase as in codellama_ls/config.py (model, maxNewTokens, suggestions,
  -- fimFormat, quantization, ...), sent as initializationOptions. The plugin asks at every
  -- change and never waits itself: the server decides (see debounceMs there).
  settings = {},
  -- "auto": use vim.lsp.inline_completion on Neovim >= 0.12, this plugin's ghost text before.
  native = "auto", ---@type boolean|"auto"
  -- The LSP completion menu (vim.lsp.completion) on Neovim 0.11. autotrigger pops it on the
  -- server's trigger characters; each popup runs a generation, so it is off by default.
  completion = { enabled = true, autotrigger = false },
  -- Insert-mode keys; each acts only while a suggestion is shown, otherwise the key does what it
  -- did before. Set one to false to leave that key alone.
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-C-Right>",
    dismiss = "<C-]>",
    suggest = "<M-\\>", -- ask explicitly: several suggestions (0.11 ghost text only)
    next = "<M-]>", -- the next of several suggestions (asks for several when one is shown)
    prev = "<M-[>", -- the previous one
  },
  -- Tell the server where the cursor rests (after delay_ms, and on entering a buffer), so the
  -- first suggestion there does not wait for the model to read the whole file (`codellama/warm`).
  warm = { enabled = true, delay_ms = 300 },
  on_attach = nil, ---@type fun(client: vim.lsp.Client, bufnr: integer)?
}

-- Lists replace the default instead of being merged index by index.
local LISTS = { "cmd", "filetypes", "root_markers" }

M.config = vim.deepcopy(defaults)

function M.native()
  local want = M.config.native
  local have = vim.fn.has("nvim-0.12") == 1 and vim.lsp.inline_completion ~= nil
  if want == "auto" then
    return have
  end
  return want == true and have
end

function M.client(bufnr)
  return vim.lsp.get_clients({ name = NAME, bufnr = bufnr })[1]
end

-- -- keys --------------------------------------------------------------------------------

local function feed(keys, remap)
  api.nvim_feedkeys(keys, remap and "im" or "in", false)
end

--- What `lhs` did in insert mode before we mapped it, as a function.
local function previous_mapping(lhs, bufnr)
  local prev = api.nvim_buf_call(bufnr, function()
    return vim.fn.maparg(lhs, "i", false, true)
  end)
  local function termcodes(keys)
    return api.nvim_replace_termcodes(keys, true, true, true)
  end
  if vim.tbl_isempty(prev) then
    return function()
      feed(termcodes(lhs), false)
    end
  end
  local remap = prev.noremap ~= 1
  return function()
    local keys
    if prev.callback then
      keys = prev.callback()
      if prev.expr ~= 1 or type(keys) ~= "string" then
        return
      end
      if prev.replace_keycodes == 1 then
        keys = termcodes(keys)
      end
    else
      keys = prev.rhs:gsub("<[Ss][Ii][Dd]>", "<SNR>" .. (prev.sid or 0) .. "_")
      if prev.expr == 1 then
        keys = api.nvim_eval(keys)
      end
      keys = termcodes(keys)
    end
    feed(keys, remap)
  end
end

local function map(bufnr, lhs, action, desc)
  if not lhs then
    return
  end
  local fallback = previous_mapping(lhs, bufnr)
  vim.keymap.set("i", lhs, function()
    if not action() then
      fallback()
    end
  end, { buffer = bufnr, desc = "codellama_ls: " .. desc, silent = true })
end

-- -- Neovim >= 0.12 -----------------------------------------------------------------------

local function native_visible(bufnr)
  local ns = api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
  return ns ~= nil and #api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { limit = 1 }) > 0
end

-- Insert part of a native item at the cursor (0.12 accepts only whole items) and tell the
-- server (0.12 itself runs the item's command, with "full", when it accepts a whole item).
local function native_partial(bufnr, how, item)
  local insert = type(item.insert_text) == "table" and item.insert_text.value or item.insert_text
  local row, col = unpack(api.nvim_win_get_cursor(0))
  row = row - 1
  local line = api.nvim_get_current_line()
  local range = item.range
  local start_col, end_col = col, col
  if range and range.start and range.start.row == row then
    start_col = range.start.col
    local stop = range.end_ or range["end"]
    end_col = stop and stop.row == row and stop.col or col
  end
  local before = line:sub(start_col + 1, col)
  if start_col > col or insert:sub(1, #before) ~= before then
    return
  end
  insert = insert:sub(#before + 1)
  local piece = how == "word" and text.next_word(insert) or text.next_line(insert)
  local stop_col = piece == insert and math.max(end_col, col) or col
  api.nvim_buf_set_text(bufnr, row, col, row, stop_col, text.lines(piece))
  local erow, ecol = text.end_of(row, col, piece)
  api.nvim_win_set_cursor(0, { erow + 1, ecol })
  local client = item.client_id and vim.lsp.get_client_by_id(item.client_id) or M.client(bufnr)
  ghost.report(client, bufnr, item, piece == insert and "full" or how, piece)
end

-- Cycle the native candidates (0.12: select; earlier development builds: jump).
local function native_cycle(bufnr, step)
  local ic = vim.lsp.inline_completion
  local select = ic.select or ic.jump
  if not select or not native_visible(bufnr) then
    return false
  end
  select({ bufnr = bufnr, count = step })
  return true
end

-- The keys are mapped once per buffer and decide at each press what to do, so a restarted
-- client (or a second attach) never wraps our own mapping as "what the key did before".
local actions = {
  accept = function(bufnr)
    if M.native() then
      return vim.lsp.inline_completion.get({ bufnr = bufnr })
    end
    return ghost.accept(bufnr, "all")
  end,
  accept_word = function(bufnr)
    if M.native() then
      return vim.lsp.inline_completion.get({
        bufnr = bufnr,
        on_accept = function(item)
          native_partial(bufnr, "word", item)
        end,
      })
    end
    return ghost.accept(bufnr, "word")
  end,
  accept_line = function(bufnr)
    if M.native() then
      return vim.lsp.inline_completion.get({
        bufnr = bufnr,
        on_accept = function(item)
          native_partial(bufnr, "line", item)
        end,
      })
    end
    return ghost.accept(bufnr, "line")
  end,
  dismiss = function(bufnr)
    if M.native() then
      if not native_visible(bufnr) then
        return false
      end
      -- 0.12 has no dismiss call: switching off and on again drops the shown item.
      vim.lsp.inline_completion.enable(false, { bufnr = bufnr })
      vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
      return true
    end
    return ghost.dismiss(bufnr)
  end,
  suggest = function(bufnr)
    return not M.native() and ghost.request(bufnr, ghost.INVOKED)
  end,
  next = function(bufnr)
    if M.native() then
      return native_cycle(bufnr, 1)
    end
    return ghost.cycle(bufnr, 1)
  end,
  prev = function(bufnr)
    if M.native() then
      return native_cycle(bufnr, -1)
    end
    return ghost.cycle(bufnr, -1)
  end,
}

local DESCRIPTIONS = {
  accept = "accept suggestion",
  accept_word = "accept one word",
  accept_line = "accept one line",
  dismiss = "dismiss suggestion",
  suggest = "suggest now",
  next = "next suggestion",
  prev = "previous suggestion",
}

local function map_keys(bufnr)
  if vim.b[bufnr].codellama_ls_mapped then
    return
  end
  vim.b[bufnr].codellama_ls_mapped = true
  for name, lhs in pairs(M.config.keymaps) do
    if lhs and actions[name] then
      map(bufnr, lhs, function()
        return actions[name](bufnr)
      end, DESCRIPTIONS[name])
    end
  end
end

local attached = {} ---@type table<integer, integer> bufnr -> client id

local function on_attach(client, bufnr)
  if attached[bufnr] == client.id then
    return
  end
  attached[bufnr] = client.id
  if M.native() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  else
    ghost.attach(bufnr, client.id)
    if M.config.completion.enabled then
      vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = M.config.completion.autotrigger })
    end
  end
  if M.config.warm.enabled then
    warm.delay_ms = M.config.warm.delay_ms
    warm.attach(bufnr, client.id)
  end
  map_keys(bufnr)
  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

local function on_detach(bufnr)
  attached[bufnr] = nil
  ghost.detach(bufnr)
  warm.detach(bufnr)
end

-- -- server requests ----------------------------------------------------------------------

--- The server's `codellama/status` ({state, error, model, generations, last, ...}).
---@return table? status, string? error
function M.status(bufnr, timeout_ms)
  local client = M.client(bufnr) or vim.lsp.get_clients({ name = NAME })[1]
  if not client then
    return nil, "codellama-ls is not running"
  end
  local reply, err = client:request_sync(STATUS_METHOD, vim.empty_dict(), timeout_ms or 2000, bufnr or 0)
  if not reply then
    return nil, err or "no answer"
  end
  if reply.err then
    return nil, reply.err.message
  end
  return reply.result
end

local function execute(command)
  local client = vim.lsp.get_clients({ name = NAME })[1]
  if not client then
    vim.notify("codellama-ls is not running", vim.log.levels.WARN)
    return
  end
  client:request("workspace/executeCommand", { command = command, arguments = {} }, function(err, result)
    if err then
      vim.notify("codellama-ls: " .. err.message, vim.log.levels.ERROR)
    elseif command == "codellama.toggle" then
      ghost.set_enabled(result ~= false)
      vim.notify("codellama-ls suggestions " .. (result and "on" or "off"))
    end
  end)
end

--- Run ``fn(client, bufnr)`` for the current buffer's codellama-ls client, or say it is not attached.
local function with_client(fn)
  local bufnr = api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    vim.notify("codellama-ls is not attached to this buffer", vim.log.levels.WARN)
    return
  end
  fn(client, bufnr)
end

local commands = {
  status = function()
    local st, err = M.status()
    if not st then
      vim.notify(err, vim.log.levels.WARN)
      return
    end
    local msg = ("codellama-ls: %s, model %s, %d generation(s)"):format(st.state, st.model ~= "" and st.model or "?", st.generations or 0)
    if st.error and st.error ~= vim.NIL then
      msg = msg .. "\n" .. st.error
    end
    -- Acceptance counts, kept in the server's memory only.
    local by_source = type(st.acceptance) == "table" and st.acceptance.bySource or {}
    for _, source in ipairs({ "model", "typed", "cache" }) do
      local c = by_source[source]
      if type(c) == "table" then
        msg = msg
          .. ("\n%s: %d shown, %d accepted, %d partly"):format(source, c.shown, c.accepted, c.partlyAccepted)
      end
    end
    vim.notify(msg)
  end,
  toggle = function()
    execute("codellama.toggle")
  end,
  restart = function()
    execute("codellama.restartEngine")
  end,
  -- Code Llama - Instruct on the selection (or the `:N,M` lines, or the cursor).
  edit = function(cmd)
    with_client(function(client, bufnr)
      instruct.edit(client, bufnr, cmd)
    end)
  end,
  explain = function(cmd)
    with_client(function(client, bufnr)
      instruct.explain(client, bufnr, cmd)
    end)
  end,
  actions = function()
    with_client(function(client, bufnr)
      instruct.code_action(client, bufnr)
    end)
  end,
}

--- Change server settings while it runs (workspace/didChangeConfiguration).
function M.configure(settings)
  M.config.settings = vim.tbl_extend("force", M.config.settings, settings)
  vim.lsp.config(NAME, { init_options = M.config.settings })
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    client:notify("workspace/didChangeConfiguration", { settings = { codellama = settings } })
  end
end

--- State of the ghost text in a buffer (for tests and debugging).
function M.info(bufnr)
  return ghost.info(bufnr or api.nvim_get_current_buf())
end

function M.setup(opts)
  if vim.fn.has("nvim-0.11") ~= 1 then
    vim.notify("codellama_ls needs Neovim 0.11 or newer", vim.log.levels.ERROR)
    return
  end
  opts = opts or {}
  local cfg = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts)
  for _, key in ipairs(LISTS) do
    if opts[key] ~= nil then
      cfg[key] = opts[key]
    end
  end
  M.config = cfg
  api.nvim_set_hl(0, ghost.hl_group, { link = "Comment", default = true })

  vim.lsp.config(NAME, {
    cmd = cfg.cmd or { "codellama-ls" },
    filetypes = cfg.filetypes,
    root_markers = cfg.root_markers,
    init_options = next(cfg.settings) and cfg.settings or vim.empty_dict(),
    -- One server (one model in memory) for the whole editor, whatever the project.
    reuse_client = function(client, config)
      return client.name == config.name and not client:is_stopped()
    end,
  })

  local group = api.nvim_create_augroup(NAME, { clear = true })
  api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == NAME then
        on_attach(client, args.buf)
      end
    end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == NAME then
        on_detach(args.buf)
      end
    end,
  })

  api.nvim_create_user_command("CodeLlama", function(cmd)
    local run = commands[cmd.args ~= "" and cmd.args or "status"]
    if not run then
      vim.notify("CodeLlama: unknown subcommand " .. cmd.args, vim.log.levels.ERROR)
      return
    end
    run(cmd)
  end, {
    nargs = "?",
    range = true,
    complete = function()
      return vim.tbl_keys(commands)
    end,
    desc = "codellama-ls: status | toggle | restart | actions | edit | explain",
  })

  vim.lsp.enable(NAME)
end

return M
