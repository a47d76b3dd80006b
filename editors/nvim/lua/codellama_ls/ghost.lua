-- Ghost text for Neovim 0.11, which has no built-in inline completion: ask the server for
-- `textDocument/inlineCompletion` at every change (the server decides how long to wait, and
-- a new request cancels the one in flight), draw the answer with an extmark, insert it on
-- request, cycle through several suggestions, and tell the server what was accepted.
-- Neovim >= 0.12 uses `vim.lsp.inline_completion` instead (see init.lua).
--
-- Positions kept here are 0-based rows and byte columns (what the extmark and buffer APIs use);
-- LSP positions are converted with the client's negotiated offset encoding.
local text = require("codellama_ls.text")
local attached = require("codellama_ls.buffers").new("codellama_ls.ghost")

local api = vim.api
local METHOD = "textDocument/inlineCompletion"
local EXECUTE = "workspace/executeCommand"
local REQUEST_CANCELLED = -32800
local CONTENT_MODIFIED = -32801
local AUTOMATIC, INVOKED = 2, 1

local M = {
  ns = api.nvim_create_namespace("codellama_ls.ghost"),
  hl_group = "CodellamaGhostText",
  enabled = true,
  max_events = 200,
}

---@class codellama_ls.Request
---@field id? integer
---@field tick integer
---@field row integer
---@field col integer
---@field step? integer cycling asked for this request: show the suggestion after (1) or before (-1) the first

---@class codellama_ls.Choice
---@field text string what is still to be inserted
---@field end_col integer end of the characters after the cursor that the text replaces
---@field replaced string those characters
---@field item table the server's item, untouched

---@class codellama_ls.Suggestion : codellama_ls.Choice
---@field id integer request that produced it
---@field row integer
---@field col integer where the text goes (the cursor)
---@field tick integer b:changedtick the suggestion belongs to
---@field choices codellama_ls.Choice[] every suggestion of the answer (the shown one is choices[index])
---@field index integer
---@field extmark? integer

---@class codellama_ls.BufState
---@field bufnr integer
---@field client_id integer
---@field pending? codellama_ls.Request
---@field suggestion? codellama_ls.Suggestion
---@field events table[]

---@type table<integer, codellama_ls.BufState>
local buffers = attached.states

local function note(st, event)
  event.time = vim.uv.hrtime() / 1e6
  table.insert(st.events, event)
  if #st.events > M.max_events then
    table.remove(st.events, 1)
  end
end

local function insert_mode()
  return api.nvim_get_mode().mode:sub(1, 1) == "i"
end

---@return integer?, integer? 0-based row and byte col of the cursor, when `bufnr` is current
local function cursor(bufnr)
  if api.nvim_get_current_buf() ~= bufnr then
    return nil, nil
  end
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function tick(bufnr)
  return api.nvim_buf_get_changedtick(bufnr)
end

local function cancel_pending(st)
  local req = st.pending
  if not req then
    return
  end
  st.pending = nil
  local client = vim.lsp.get_client_by_id(st.client_id)
  if client and req.id and not client:is_stopped() then
    client:cancel_request(req.id)
  end
  note(st, { event = "cancel", id = req.id })
end

local function hide(st)
  st.suggestion = nil
  api.nvim_buf_clear_namespace(st.bufnr, M.ns, 0, -1)
end

local function expand_tabs(bufnr, s)
  return (s:gsub("\t", string.rep(" ", vim.bo[bufnr].tabstop)))
end

---@param st codellama_ls.BufState
---@param s codellama_ls.Suggestion
local function render(st, s)
  api.nvim_buf_clear_namespace(st.bufnr, M.ns, 0, -1)
  local lines = text.lines(s.text)
  local first = lines[1]
  -- A one-line suggestion that ends with the characters it replaces (typically closing
  -- brackets) reads right when those characters are left out of the ghost text.
  if #lines == 1 and s.replaced ~= "" and vim.endswith(first, s.replaced) then
    first = first:sub(1, #first - #s.replaced)
  end
  local opts = { hl_mode = "combine" }
  if first ~= "" then
    opts.virt_text = { { expand_tabs(st.bufnr, first), M.hl_group } }
    opts.virt_text_pos = "inline"
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { expand_tabs(st.bufnr, lines[i]), M.hl_group } })
    end
  end
  s.extmark = api.nvim_buf_set_extmark(st.bufnr, M.ns, s.row, s.col, opts)
end

--- Show choice `index` of the suggestion's choices.
---@param s codellama_ls.Suggestion
local function choose(s, index)
  local c = s.choices[index]
  s.index, s.text, s.end_col, s.replaced, s.item = index, c.text, c.end_col, c.replaced, c.item
end

--- Keep showing a suggestion while what was inserted since (typed, or accepted word by word)
--- matches its beginning; the other choices that still match stay available for cycling.
---@return boolean advanced
local function advance(st, s)
  local row, col = cursor(st.bufnr)
  if not row or row < s.row or (row == s.row and col <= s.col) then
    return false
  end
  local ok, typed = pcall(api.nvim_buf_get_text, st.bufnr, s.row, s.col, row, col, {})
  if not ok then
    return false
  end
  typed = table.concat(typed, "\n")
  if #typed >= #s.text or s.text:sub(1, #typed) ~= typed then
    return false
  end
  local line = api.nvim_buf_get_lines(st.bufnr, row, row + 1, true)[1]
  if line:sub(col + 1, col + #s.replaced) ~= s.replaced then
    return false
  end
  local shown, kept = s.choices[s.index], {}
  for _, c in ipairs(s.choices) do
    if #typed < #c.text and c.text:sub(1, #typed) == typed then
      local rest = c.text:sub(#typed + 1)
      table.insert(kept, { text = rest, end_col = col + #c.replaced, replaced = c.replaced, item = c.item })
      if c == shown then
        s.index = #kept
      end
    end
  end
  s.choices = kept
  choose(s, s.index)
  s.row, s.col = row, col
  s.tick = tick(st.bufnr)
  render(st, s)
  note(st, { event = "advance", id = s.id, typed = typed })
  return true
end

--- One server item as a choice at the request position, or why it cannot be one.
---@return codellama_ls.Choice?, string?
local function choice(st, req, item, line, client)
  if type(item) ~= "table" then
    return nil, "empty"
  end
  local insert = item.insertText
  if type(insert) == "table" then
    insert = insert.value -- a snippet: shown and inserted as plain text
  end
  if type(insert) ~= "string" then
    return nil, "empty"
  end
  insert = insert:gsub("\r\n?", "\n")
  local start_col, end_col = req.col, req.col
  if item.range then
    local from, to = item.range.start, item.range["end"]
    if from.line ~= req.row or to.line ~= req.row then
      return nil, "range"
    end
    start_col = vim.str_byteindex(line, client.offset_encoding, from.character, false)
    end_col = vim.str_byteindex(line, client.offset_encoding, to.character, false)
  end
  if start_col > req.col or end_col < req.col then
    return nil, "range"
  end
  -- A range that starts before the cursor repeats what is already typed there.
  local before = line:sub(start_col + 1, req.col)
  if insert:sub(1, #before) ~= before then
    return nil, "range"
  end
  insert = insert:sub(#before + 1)
  if insert == "" or insert == line:sub(req.col + 1, end_col) then
    return nil, "empty"
  end
  return { text = insert, end_col = end_col, replaced = line:sub(req.col + 1, end_col), item = item }
end

--- Turn the server's answer into a suggestion at the request position, or say why not.
---@return codellama_ls.Suggestion?, string?
local function build(st, req, result)
  local items = type(result) == "table" and (result.items or result) or {}
  local client = vim.lsp.get_client_by_id(st.client_id)
  if not client then
    return nil, "client gone"
  end
  local line = api.nvim_buf_get_lines(st.bufnr, req.row, req.row + 1, true)[1]
  local choices, why = {}, "empty"
  for _, item in ipairs(items) do
    local c, reason = choice(st, req, item, line, client)
    if c then
      table.insert(choices, c)
    else
      why = reason
    end
  end
  if #choices == 0 then
    return nil, why
  end
  ---@type codellama_ls.Suggestion
  local s = { id = req.id, row = req.row, col = req.col, tick = req.tick, choices = choices, index = 1 }
  -- Cycling from the one suggestion shown: it is the first here too (the greedy one), show the next.
  local index = req.step and #choices > 1 and (req.step > 0 and 2 or #choices) or 1
  choose(s, index)
  return s
end

local function on_response(st, req, err, result)
  if buffers[st.bufnr] ~= st then
    return
  end
  if st.pending ~= req then
    -- Cancelled or superseded: the server answers RequestCancelled, or a late result we ignore.
    local reason = err and err.code == REQUEST_CANCELLED and "cancelled" or "superseded"
    note(st, { event = "drop", id = req.id, reason = reason, code = err and err.code })
    return
  end
  st.pending = nil
  if err then
    note(st, { event = "error", id = req.id, code = err.code, message = err.message })
    if err.code ~= REQUEST_CANCELLED and err.code ~= CONTENT_MODIFIED then
      vim.lsp.log.warn("codellama_ls: inlineCompletion failed", err)
    end
    return
  end
  local row, col = cursor(st.bufnr)
  if tick(st.bufnr) ~= req.tick or row ~= req.row or col ~= req.col or not insert_mode() then
    note(st, { event = "drop", id = req.id, reason = "stale" })
    return
  end
  local s, why = build(st, req, result)
  if not s then
    note(st, { event = "drop", id = req.id, reason = why })
    return
  end
  st.suggestion = s
  render(st, s)
  note(st, { event = "show", id = req.id, text = s.text, index = s.index, count = #s.choices })
end

--- Ask the server now (cancelling any request in flight for this buffer).
---@param bufnr integer
---@param kind? integer InlineCompletionTriggerKind (2 = automatic, 1 = invoked)
---@param step? integer when cycling: show the suggestion after (1) or before (-1) the one shown
---@return boolean sent
function M.request(bufnr, kind, step)
  local st, client = attached:current(bufnr)
  if not st or not client or not insert_mode() then
    return false
  end
  cancel_pending(st)
  local row, col = cursor(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = kind or AUTOMATIC }
  ---@type codellama_ls.Request
  local req = { tick = tick(bufnr), row = row, col = col, step = step }
  st.pending = req
  local ok, id = client:request(METHOD, params, function(err, result)
    on_response(st, req, err, result)
  end, bufnr)
  if not ok then
    st.pending = nil
    note(st, { event = "error", message = "request not sent" })
    return false
  end
  req.id = id
  note(st, { event = "request", id = id, row = row, col = col, tick = req.tick })
  return true
end

local function on_change(st)
  if st.suggestion and advance(st, st.suggestion) then
    return
  end
  hide(st)
  -- No wait here: the server starts at once (local model) or waits as the user's typing
  -- speed says (remote server); this request cancels the one in flight.
  if M.enabled then
    M.request(st.bufnr, AUTOMATIC)
  else
    cancel_pending(st)
  end
end

-- Pure cursor moves (no edit) make a shown suggestion and a request in flight pointless;
-- edits are handled by TextChangedI, which follows CursorMovedI.
local function on_move(st)
  local t = tick(st.bufnr)
  local row, col = cursor(st.bufnr)
  local s = st.suggestion
  if s and s.tick == t and (row ~= s.row or col ~= s.col) then
    hide(st)
  end
  local req = st.pending
  if req and req.tick == t and (row ~= req.row or col ~= req.col) then
    cancel_pending(st)
  end
end

--- Hide the suggestion and cancel the request in flight.
---@return boolean was_visible
function M.dismiss(bufnr)
  local st = buffers[bufnr]
  if not st then
    return false
  end
  local visible = st.suggestion ~= nil
  cancel_pending(st)
  hide(st)
  if visible then
    note(st, { event = "dismiss" })
  end
  return visible
end

function M.visible(bufnr)
  local st = buffers[bufnr]
  return st ~= nil and st.suggestion ~= nil
end

--- Tell the server that `piece` of `item` was inserted (`codellama.accepted`, counted in
--- its `codellama/status`; nothing leaves the machine).
---@param kind "full"|"word"|"line"
function M.report(client, bufnr, item, kind, piece)
  local command = type(item) == "table" and item.command
  if not client or type(command) ~= "table" or type(command.arguments) ~= "table" then
    return false
  end
  local params = { command = command.command, arguments = { command.arguments[1], kind, vim.fn.strchars(piece) } }
  client:request(EXECUTE, params, function() end, bufnr)
  return true
end

--- The shown suggestion, when it still belongs to the cursor and the text.
local function current(st)
  local s = st and st.suggestion
  if not s then
    return nil
  end
  local row, col = cursor(st.bufnr)
  if row ~= s.row or col ~= s.col or tick(st.bufnr) ~= s.tick then
    hide(st)
    return nil
  end
  return s
end

--- Show the next (step = 1) or previous (-1) suggestion. With one or none on screen, ask the
--- server explicitly (it then makes several) and show the next one of its answer.
---@return boolean done
function M.cycle(bufnr, step)
  local st = buffers[bufnr]
  if not st or not insert_mode() then
    return false
  end
  local s = current(st)
  if s and #s.choices > 1 then
    choose(s, (s.index - 1 + step) % #s.choices + 1)
    render(st, s)
    note(st, { event = "cycle", id = s.id, index = s.index, count = #s.choices, text = s.text })
    return true
  end
  return M.request(bufnr, INVOKED, s and step or nil)
end

--- Insert the suggestion (how = "all"), its next word or its next line.
---@param how? "all"|"word"|"line"
---@return boolean inserted false when no suggestion is shown at the cursor
function M.accept(bufnr, how)
  local st = buffers[bufnr]
  local s = current(st)
  if not s then
    return false
  end
  local row, col = s.row, s.col
  local piece = s.text
  if how == "word" then
    piece = text.next_word(s.text)
  elseif how == "line" then
    piece = text.next_line(s.text)
  end
  local full = piece == s.text
  local item = s.item
  note(st, { event = "accept", id = s.id, text = piece, full = full, index = s.index })
  if full then
    hide(st)
    api.nvim_buf_set_text(bufnr, row, col, row, s.end_col, text.lines(piece))
  else
    -- The suggestion stays; TextChangedI advances it past the inserted piece.
    api.nvim_buf_set_text(bufnr, row, col, row, col, text.lines(piece))
  end
  local erow, ecol = text.end_of(row, col, piece)
  api.nvim_win_set_cursor(0, { erow + 1, ecol })
  local kind = full and "full" or how
  if M.report(vim.lsp.get_client_by_id(st.client_id), bufnr, item, kind, piece) then
    note(st, { event = "reported", id = s.id, kind = kind, length = vim.fn.strchars(piece) })
  end
  return true
end

---@param bufnr integer
---@param client_id integer
function M.attach(bufnr, client_id)
  local st, created = attached:attach(bufnr, client_id, function()
    return { bufnr = bufnr, events = {} }
  end)
  if not created then
    return
  end
  local on = attached:autocmds(bufnr)
  on({ "TextChangedI", "TextChangedP" }, function()
    on_change(st)
  end)
  on("CursorMovedI", function()
    on_move(st)
  end)
  on({ "InsertLeave", "BufLeave" }, function()
    M.dismiss(bufnr)
  end)
  on({ "BufUnload", "BufWipeout" }, function()
    M.detach(bufnr)
  end)
end

function M.detach(bufnr)
  M.dismiss(bufnr) -- does nothing when not attached
  attached:detach(bufnr)
end

function M.set_enabled(on)
  M.enabled = on
  if not on then
    for bufnr in pairs(buffers) do
      M.dismiss(bufnr)
    end
  end
end

--- A snapshot for tests and debugging (`:lua =require("codellama_ls").info()`).
function M.info(bufnr)
  local st = buffers[bufnr]
  if not st then
    return nil
  end
  local s = st.suggestion
  return {
    client_id = st.client_id,
    pending = st.pending and st.pending.id or nil,
    suggestion = s and {
      id = s.id,
      text = s.text,
      row = s.row,
      col = s.col,
      end_col = s.end_col,
      tick = s.tick,
      item = s.item,
      index = s.index,
      count = #s.choices,
    } or nil,
    events = vim.deepcopy(st.events),
    extmarks = api.nvim_buf_get_extmarks(bufnr, M.ns, 0, -1, { details = true }),
  }
end

M.INVOKED = INVOKED
return M
