--- lsp-copilot: a bounded in-memory log of plugin events (requests, chunks, responses, drops) for :LspCopilot log.
local M = {}

---@class lsp_copilot.LogEntry
---@field time number   seconds (vim.uv.hrtime based) since the log was created
---@field kind string   "request" | "chunk" | "response" | "drop" | "cancel" | "accept" | "status" | "error" | ...
---@field data table

---@class lsp_copilot.Log
---@field entries lsp_copilot.LogEntry[]  oldest first; #entries <= max
---@field max integer
---@field start integer hrtime at creation
local Log = {}
Log.__index = Log

---@param max integer
---@return lsp_copilot.Log
function M.new(max)
  return setmetatable({ entries = {}, max = max, start = vim.uv.hrtime() }, Log)
end

---@param kind string
---@param data table|nil
function Log:add(kind, data)
  self.entries[#self.entries + 1] = { time = (vim.uv.hrtime() - self.start) / 1e9, kind = kind, data = data or {} }
  if #self.entries > self.max then
    table.remove(self.entries, 1)
  end
end

--- One line per entry: "  12.345 kind {data}".
---@return string[]
function Log:lines()
  return vim.tbl_map(function(e)
    return ("%9.3f %-9s %s"):format(e.time, e.kind, vim.inspect(e.data, { newline = " ", indent = "" }))
  end, self.entries)
end

return M
