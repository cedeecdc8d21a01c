--- lsp-copilot: ghost-text renderer (one extmark per buffer in the namespace "lsp_copilot").
local M = {}

M.HL_GROUP = "LspCopilotSuggestion"

---@class lsp_copilot.Ghost
---@field ns integer                  namespace "lsp_copilot"
---@field marks table<integer, integer> bufnr -> id of the one extmark drawn there
local Ghost = {}
Ghost.__index = Ghost

---@return lsp_copilot.Ghost
function M.new()
  vim.api.nvim_set_hl(0, M.HL_GROUP, { link = "Comment", default = true })
  return setmetatable({ ns = vim.api.nvim_create_namespace("lsp_copilot"), marks = {} }, Ghost)
end

--- Tabs are drawn as spaces: virtual text does not expand them.
---@param bufnr integer
---@param text string
---@return string
local function expand_tabs(bufnr, text)
  if not text:find("\t", 1, true) then
    return text
  end
  return (text:gsub("\t", string.rep(" ", vim.bo[bufnr].tabstop)))
end

--- Draws `text` as ghost text at (row, col): its first line inline at the cursor, the others as virtual lines below.
--- `tail` is the text after the cursor that accepting overwrites; when the first line ends with it, the part
--- already on screen is not drawn twice.
--- Invariant: at most one extmark of this namespace exists per buffer, and it is this suggestion's.
---@param bufnr integer
---@param row integer 0-based
---@param col integer 0-based byte column
---@param text string non-empty
---@param tail string|nil
function Ghost:show(bufnr, row, col, text, tail)
  local lines = vim.split(text, "\n", { plain = true })
  local first = lines[1]
  if tail and tail ~= "" and #lines == 1 and vim.endswith(first, tail) then
    first = first:sub(1, #first - #tail)
  end
  local opts = {
    hl_mode = "combine",
    priority = 65534,
    right_gravity = false,
  }
  if first ~= "" then
    opts.virt_text = { { expand_tabs(bufnr, first), M.HL_GROUP } }
    opts.virt_text_pos = vim.fn.has("nvim-0.10") == 1 and "inline" or "overlay"
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      opts.virt_lines[#opts.virt_lines + 1] = { { expand_tabs(bufnr, lines[i]), M.HL_GROUP } }
    end
  end
  -- Redraw from scratch (same tick, so no flicker): the namespace holds only this mark afterwards.
  vim.api.nvim_buf_clear_namespace(bufnr, self.ns, 0, -1)
  self.marks[bufnr] = vim.api.nvim_buf_set_extmark(bufnr, self.ns, row, col, opts)
end

--- Removes the ghost text of `bufnr` (a no-op when none is drawn).
---@param bufnr integer
function Ghost:clear(bufnr)
  self.marks[bufnr] = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, self.ns, 0, -1)
  end
end

--- Whether ghost text is drawn in `bufnr`.
---@param bufnr integer
---@return boolean
function Ghost:visible(bufnr)
  return self.marks[bufnr] ~= nil
end

--- The text drawn in `bufnr` as read back from its extmarks ("" when none): first line, "\n", virtual lines.
---@param bufnr integer
---@return string
function Ghost:read(bufnr)
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, self.ns, 0, -1, { details = true })
  if #marks == 0 then
    return ""
  end
  local details = marks[1][4]
  local parts = { table.concat(vim.tbl_map(function(chunk)
    return chunk[1]
  end, details.virt_text or {})) }
  for _, line in ipairs(details.virt_lines or {}) do
    parts[#parts + 1] = table.concat(vim.tbl_map(function(chunk)
      return chunk[1]
    end, line))
  end
  return table.concat(parts, "\n")
end

return M
