-- Tell the server where the cursor rests (`codellama/warm`, a notification), so it computes that
-- place's prompt into its cache while the user reads or thinks: the first suggestion there then
-- skips the long prefill. Sent when the cursor has not moved for `delay_ms` (normal and insert
-- mode) and at once on entering a buffer. The server does this work only when no request waits.
local api = vim.api
local METHOD = "codellama/warm"
local attached = require("codellama_ls.buffers").new("codellama_ls.warm")

local M = { enabled = true, delay_ms = 300, sent = 0 }

---@type table<integer, { client_id: integer, timer: uv.uv_timer_t?, last: string? }>
local buffers = attached.states

local function stop_timer(st)
  if st.timer then
    st.timer:stop()
    st.timer:close()
    st.timer = nil
  end
end

--- Send `codellama/warm` for the cursor of `bufnr` (when it is the current buffer), once per place.
function M.send(bufnr)
  local st, client = attached:current(bufnr)
  if not st or not client or not M.enabled then
    return false
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local place = string.format(
    "%d:%d:%d",
    api.nvim_buf_get_changedtick(bufnr),
    params.position.line,
    params.position.character
  )
  if place == st.last then
    return false -- the same place of the same text: its prompt is computed already
  end
  st.last = place
  M.sent = M.sent + 1
  return client:notify(METHOD, { textDocument = params.textDocument, position = params.position })
end

local function schedule(bufnr, delay)
  local st = buffers[bufnr]
  if not st then
    return
  end
  stop_timer(st)
  local timer = vim.uv.new_timer()
  if not timer then
    return
  end
  st.timer = timer
  timer:start(delay, 0, function()
    vim.schedule(function()
      if buffers[bufnr] == st and st.timer == timer then
        stop_timer(st)
        M.send(bufnr)
      end
    end)
  end)
end

---@param bufnr integer
---@param client_id integer
function M.attach(bufnr, client_id)
  local st = attached:attach(bufnr, client_id, function()
    return {}
  end)
  local on = attached:autocmds(bufnr)
  on({ "CursorMoved", "CursorMovedI" }, function()
    schedule(bufnr, M.delay_ms)
  end)
  on("BufEnter", function()
    st.last = nil -- another buffer was computed meanwhile: say where this one rests again
    schedule(bufnr, 0)
  end)
  on({ "BufLeave", "BufUnload", "BufWipeout" }, function(args)
    stop_timer(st)
    if args.event ~= "BufLeave" then
      M.detach(bufnr)
    end
  end)
  schedule(bufnr, 0) -- the buffer was entered before the client attached
end

function M.detach(bufnr)
  local st = attached:detach(bufnr)
  if st then
    stop_timer(st)
  end
end

return M
