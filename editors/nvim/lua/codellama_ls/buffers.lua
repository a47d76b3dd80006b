-- The buffers a part of the plugin (ghost text, warm) is attached to: one state table a buffer,
-- with the buffer's own autocommand group, both gone on detach.
local api = vim.api

local M = {}

---@class codellama_ls.Buffers
---@field name string prefix of the autocommand groups ("codellama_ls.ghost" → "codellama_ls.ghost.3")
---@field states table<integer, table> bufnr -> state
local Buffers = {}
Buffers.__index = Buffers

---@param name string
---@return codellama_ls.Buffers
function M.new(name)
  return setmetatable({ name = name, states = {} }, Buffers)
end

--- The state of `bufnr`, now for client `client_id`: the one it has, or `new()` (stored).
---@param new fun(): table
---@return table state
---@return boolean created
function Buffers:attach(bufnr, client_id, new)
  local st = self.states[bufnr]
  if st then
    st.client_id = client_id
    return st, false
  end
  st = new()
  st.client_id = client_id
  self.states[bufnr] = st
  return st, true
end

--- The state of `bufnr` and its client, when `bufnr` is attached, is the current buffer and its
--- client runs; nothing otherwise.
---@return table?, vim.lsp.Client?
function Buffers:current(bufnr)
  local st = self.states[bufnr]
  if not st or api.nvim_get_current_buf() ~= bufnr then
    return nil
  end
  local client = vim.lsp.get_client_by_id(st.client_id)
  if not client or client:is_stopped() then
    return nil
  end
  return st, client
end

--- A fresh (cleared) autocommand group for `bufnr`, and a function that adds an autocommand for
--- that buffer to it: `on(events, callback)`.
---@return fun(events: string|string[], callback: fun(args: table))
function Buffers:autocmds(bufnr)
  local group = api.nvim_create_augroup(self.name .. "." .. bufnr, { clear = true })
  return function(events, callback)
    api.nvim_create_autocmd(events, { group = group, buffer = bufnr, callback = callback })
  end
end

--- Forget `bufnr`: its state (returned; nil when it had none) and its autocommands.
---@return table?
function Buffers:detach(bufnr)
  local st = self.states[bufnr]
  if not st then
    return nil
  end
  self.states[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, self.name .. "." .. bufnr)
  return st
end

return M
