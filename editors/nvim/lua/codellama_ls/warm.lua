-- Tell the server where the cursor rests (`codellama/warm`, a notification), so it computes that
-- place's prompt into its cache while the user reads or thinks: the first suggestion there then
-- skips the long prefill. Sent when the cursor has not moved for `delay_ms` (normal and insert
-- mode) and at once on entering a buffer. The server does this work only when no request waits.
local api = vim.api
local METHOD = "codellama/warm"

local M = { enabled = true, delay_ms = 300, sent = 0 }

---@type table<integer, { client_id: integer, timer: uv.uv_timer_t?, last: string? }>
local buffers = {}

local function stop_timer(st)
  if st.timer then
    st.timer:stop()
    st.timer:close()
    st.timer = nil
  end
end

--- Send `codellama/warm` for the cursor of `bufnr` (when it is the current buffer), once per place.
function M.send(bufnr)
  local st = buffers[bufnr]
  if not st or not M.enabled or api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  local client = vim.lsp.get_client_by_id(st.client_id)
  if not client or client:is_stopped() then
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
  local st = buffers[bufnr]
  if st then
    st.client_id = client_id
  else
    st = { client_id = client_id }
    buffers[bufnr] = st
  end
  local group = api.nvim_create_augroup("codellama_ls.warm." .. bufnr, { clear = true })
  api.nvim_create_autocmd({ "CursorMoved", "CursorMovedI" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      schedule(bufnr, M.delay_ms)
    end,
  })
  api.nvim_create_autocmd("BufEnter", {
    group = group,
    buffer = bufnr,
    callback = function()
      st.last = nil -- another buffer was computed meanwhile: say where this one rests again
      schedule(bufnr, 0)
    end,
  })
  api.nvim_create_autocmd({ "BufLeave", "BufUnload", "BufWipeout" }, {
    group = group,
    buffer = bufnr,
    callback = function(args)
      stop_timer(st)
      if args.event ~= "BufLeave" then
        M.detach(bufnr)
      end
    end,
  })
  schedule(bufnr, 0) -- the buffer was entered before the client attached
end

function M.detach(bufnr)
  local st = buffers[bufnr]
  if not st then
    return
  end
  stop_timer(st)
  buffers[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, "codellama_ls.warm." .. bufnr)
end

return M
