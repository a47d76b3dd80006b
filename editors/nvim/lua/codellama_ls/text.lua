-- Pure text helpers for partial acceptance; no editor state, so they are easy to reason about.
local M = {}

-- Bytes >= 0x80 count as word characters so a multibyte character is never split.
local WORD = "^[%w_\128-\255]+"
local PUNCT = "^[^%s%w_\128-\255]+"

--- The next word of a suggestion: leading blanks plus one run of word or punctuation characters.
--- At the end of a line it is the line break plus the next line's indentation.
---@param text string
---@return string
function M.next_word(text)
  local blanks = text:match("^[ \t]*")
  local rest = text:sub(#blanks + 1)
  if rest:sub(1, 1) == "\n" then
    return blanks .. rest:match("^\n[ \t]*")
  end
  return blanks .. (rest:match(WORD) or rest:match(PUNCT) or "")
end

--- The rest of the current line of a suggestion; when the suggestion starts with a line
--- break, the break and the whole next line.
---@param text string
---@return string
function M.next_line(text)
  local start = text:sub(1, 1) == "\n" and 2 or 1
  local nl = text:find("\n", start, true)
  return nl and text:sub(1, nl - 1) or text
end

--- Split on "\n" only (a suggestion never carries "\r": Neovim buffers have no CR in lines).
---@param text string
---@return string[]
function M.lines(text)
  return vim.split(text, "\n", { plain = true })
end

--- Where the cursor ends up after inserting ``text`` at (row, col): 0-based row, byte col.
---@return integer, integer
function M.end_of(row, col, text)
  local lines = M.lines(text)
  if #lines == 1 then
    return row, col + #lines[1]
  end
  return row + #lines - 1, #lines[#lines]
end

return M
