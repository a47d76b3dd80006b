-- Code Llama - Instruct commands: `:CodeLlama edit` and `:CodeLlama explain`.
--
-- Docstrings, unit tests and fixes are ordinary code actions (`vim.lsp.buf.code_action()`, `gra`):
-- Neovim lists them, resolves the chosen one and applies its edit. Edit and Explain are server
-- commands (`codellama.edit`, `codellama.explain`) run through `workspace/executeCommand`; the server
-- sends the edit back as `workspace/applyEdit`, which Neovim applies as one undo step.
local api = vim.api

local M = {}

local EDIT_COMMAND = "codellama.edit"
local EXPLAIN_COMMAND = "codellama.explain"

-- The last explanation shown (for tests and `:lua =require("codellama_ls.actions").last`).
M.last = nil ---@type {markdown: string, bufnr: integer, winid: integer}?

--- A byte column of buffer line `row` (0-based) in the client's position encoding.
local function lsp_column(bufnr, row, col, encoding)
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  return vim.str_utfindex(line, encoding, math.min(col, #line), false)
end

--- The range a command is about, in LSP terms: the visual selection (charwise, or whole lines), the
--- lines of a `:N,M` range, or the cursor (an empty range: Explain takes the function there).
---@param cmd table the user command's arguments (range, line1, line2)
function M.range(bufnr, cmd, encoding)
  local start_row, start_col, end_row, end_col
  if cmd.range == 0 then
    local cursor = api.nvim_win_get_cursor(0)
    start_row, start_col = cursor[1] - 1, cursor[2]
    end_row, end_col = start_row, start_col
  else
    local first, last = api.nvim_buf_get_mark(bufnr, "<"), api.nvim_buf_get_mark(bufnr, ">")
    local charwise = vim.fn.visualmode() == "v" and first[1] == cmd.line1 and last[1] == cmd.line2
    if charwise then
      start_row, start_col = first[1] - 1, first[2]
      end_row = last[1] - 1
      local line = api.nvim_buf_get_lines(bufnr, end_row, end_row + 1, false)[1] or ""
      local char = vim.fn.strcharpart(line:sub(last[2] + 1), 0, 1) -- the last selected character, whole
      end_col = math.min(last[2] + #char, #line)
    else
      start_row, start_col = cmd.line1 - 1, 0
      end_row = cmd.line2 - 1
      end_col = #(api.nvim_buf_get_lines(bufnr, end_row, end_row + 1, false)[1] or "")
    end
  end
  return {
    start = { line = start_row, character = lsp_column(bufnr, start_row, start_col, encoding) },
    ["end"] = { line = end_row, character = lsp_column(bufnr, end_row, end_col, encoding) },
  }
end

local function execute(client, bufnr, command, argument, on_result)
  client:request("workspace/executeCommand", { command = command, arguments = { argument } }, function(err, result)
    if err then
      vim.notify("codellama-ls: " .. err.message, vim.log.levels.ERROR)
      return
    end
    on_result(result)
  end, bufnr)
end

--- `:CodeLlama edit`: ask for an instruction (vim.ui.input), the server rewrites the range.
function M.edit(client, bufnr, cmd)
  local range = M.range(bufnr, cmd, client.offset_encoding)
  local uri = vim.uri_from_bufnr(bufnr)
  vim.ui.input({ prompt = "Code Llama, edit: " }, function(instruction)
    if not instruction or instruction:match("^%s*$") then
      return
    end
    -- The edit arrives as workspace/applyEdit; an unusable answer arrives as a message.
    execute(client, bufnr, EDIT_COMMAND, { uri = uri, range = range, instruction = instruction }, function() end)
  end)
end

--- `:CodeLlama explain`: the server's markdown in a floating window (call again to enter it).
function M.explain(client, bufnr, cmd)
  local range = M.range(bufnr, cmd, client.offset_encoding)
  execute(client, bufnr, EXPLAIN_COMMAND, { uri = vim.uri_from_bufnr(bufnr), range = range }, function(result)
    if type(result) ~= "table" or type(result.markdown) ~= "string" then
      return -- the server said why in a message
    end
    local lines = vim.split(result.markdown, "\n", { plain = true })
    local float_buf, winid = vim.lsp.util.open_floating_preview(lines, "markdown", {
      border = "rounded",
      focus_id = "codellama_ls_explain",
      max_width = math.max(40, math.floor(vim.o.columns * 0.6)),
      title = " Code Llama ",
    })
    M.last = { markdown = result.markdown, bufnr = float_buf, winid = winid }
  end)
end

--- `:CodeLlama actions`: codellama-ls's code actions at the cursor, with a *Fix* for every diagnostic on
--- the line whoever reported it. (`vim.lsp.buf.code_action()` passes a server only its own diagnostics,
--- and codellama-ls reports none.) The chosen action is resolved and applied as Neovim does it.
function M.code_action(client, bufnr)
  local encoding = client.offset_encoding
  local lnum = api.nvim_win_get_cursor(0)[1] - 1
  local diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = lnum })) do
    local end_lnum = d.end_lnum or d.lnum
    table.insert(diagnostics, {
      range = {
        start = { line = d.lnum, character = lsp_column(bufnr, d.lnum, d.col, encoding) },
        ["end"] = { line = end_lnum, character = lsp_column(bufnr, end_lnum, d.end_col or d.col, encoding) },
      },
      message = d.message,
      severity = d.severity,
      source = d.source,
    })
  end
  local params = vim.lsp.util.make_range_params(0, encoding)
  params.context = { diagnostics = diagnostics, triggerKind = 1 }

  local function apply(action)
    if action.edit then
      vim.lsp.util.apply_workspace_edit(action.edit, encoding)
    end
    if type(action.command) == "table" then
      client:exec_cmd(action.command, { bufnr = bufnr })
    end
  end

  client:request("textDocument/codeAction", params, function(err, actions)
    if err then
      vim.notify("codellama-ls: " .. err.message, vim.log.levels.ERROR)
      return
    end
    if not actions or #actions == 0 then
      vim.notify("codellama-ls: no code actions here", vim.log.levels.INFO)
      return
    end
    vim.ui.select(actions, {
      prompt = "Code Llama:",
      kind = "codeaction",
      format_item = function(action)
        return action.title
      end,
    }, function(action)
      if not action then
        return
      end
      if action.edit or not client:supports_method("codeAction/resolve") then
        apply(action)
        return
      end
      client:request("codeAction/resolve", action, function(resolve_err, resolved)
        if resolve_err then
          vim.notify("codellama-ls: " .. resolve_err.message, vim.log.levels.ERROR)
        elseif resolved then
          apply(resolved)
        end
      end, bufnr)
    end)
  end, bufnr)
end

return M
