--- lsp-copilot: when to ask, which answers to show, typing through, accepting and cycling suggestions.
local lsp_client = require("lsp_copilot.client")

local api = vim.api
local M = {}

M.METHOD = "textDocument/inlineCompletion"
local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2 -- lsp.InlineCompletionTriggerKind

---@class lsp_copilot.Item
---@field text string  what to insert at the anchor (the part of the range before the cursor already stripped)
---@field tail integer bytes after the anchor on the anchor line that accepting the whole item overwrites

---@class lsp_copilot.Suggestion  What one request produced, anchored where it was made.
---@field client_id integer
---@field request_id integer|nil   the request still filling it; nil once answered or cancelled
---@field version integer          buffer version (changedtick) the request was made for
---@field row integer              anchor row (0-based): the cursor at request time
---@field col integer              anchor byte column (0-based)
---@field line_before string       the anchor line before `col` at request time
---@field line_after string        the anchor line from `col` on at request time
---@field items lsp_copilot.Item[] empty until the first chunk or the response
---@field index integer            the item shown
---@field typed string             typed through since the anchor; invariant: a prefix of items[index].text
---@field done boolean             the response arrived (items are final)
---@field trigger "auto"|"manual"

---@class lsp_copilot.BufState
---@field suggestion lsp_copilot.Suggestion|nil
---@field timer uv.uv_timer_t|nil  debounce timer of the automatic trigger

---@class lsp_copilot.Suggester
---@field cfg lsp_copilot.Config
---@field ghost lsp_copilot.Ghost
---@field log lsp_copilot.Log
---@field is_enabled fun(): boolean
---@field bufs table<integer, lsp_copilot.BufState>
local Suggester = {}
Suggester.__index = Suggester

---@param cfg lsp_copilot.Config
---@param ghost lsp_copilot.Ghost
---@param log lsp_copilot.Log
---@param is_enabled fun(): boolean
---@return lsp_copilot.Suggester
function M.new(cfg, ghost, log, is_enabled)
  return setmetatable({ cfg = cfg, ghost = ghost, log = log, is_enabled = is_enabled, bufs = {} }, Suggester)
end

-- Text helpers ---------------------------------------------------------------------------------------------------

---@param bufnr integer
---@param row integer 0-based
---@return string
local function get_line(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

--- Byte index of a position's `character` (in the client's offset encoding) within `line`.
---@param line string
---@param character integer
---@param encoding string
---@return integer
local function byte_index(line, character, encoding)
  if vim.fn.has("nvim-0.11") == 1 then
    return vim.str_byteindex(line, encoding, character, false)
  end
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  return vim.lsp.util._str_byteindex_enc(line, character, encoding) ---@diagnostic disable-line
end

--- The next word of `text`: a newline with the next line's indentation, else blanks plus a word or punctuation run.
---@param text string non-empty
---@return string
function M.next_word(text)
  return text:match("^\n[ \t]*") or text:match("^[ \t]*[%w_]+") or text:match("^[ \t]*[^%w_%s]+")
    or text:match("^[ \t]+") or text:sub(1, 1)
end

--- The rest of the current line of `text`; when `text` starts with a newline, the newline and the next line.
---@param text string non-empty
---@return string
function M.next_line(text)
  return text:match("^\n[^\n]*") or text:match("^[^\n]*")
end

---@param bufnr integer
---@return boolean
local function in_insert_mode_at(bufnr)
  return api.nvim_get_current_buf() == bufnr and api.nvim_get_mode().mode:sub(1, 1) == "i"
end

---@param bufnr integer
---@return integer
local function buf_version(bufnr)
  return vim.lsp.util.buf_versions[bufnr] or api.nvim_buf_get_changedtick(bufnr)
end

-- State ----------------------------------------------------------------------------------------------------------

---@param bufnr integer
---@return lsp_copilot.BufState
function Suggester:state(bufnr)
  local bs = self.bufs[bufnr]
  if not bs then
    bs = {}
    self.bufs[bufnr] = bs
  end
  return bs
end

--- Cancels the request still filling `s`, if any (the server then answers with an empty result, which is dropped).
---@param s lsp_copilot.Suggestion
---@param reason string
function Suggester:cancel_request(s, reason)
  local id = s.request_id
  if not id then
    return
  end
  s.request_id = nil
  local client = vim.lsp.get_client_by_id(s.client_id)
  if client then
    lsp_client.cancel(client, id)
  end
  self.log:add("cancel", { id = id, reason = reason })
end

--- Drops the suggestion of `bufnr`: cancels its request and clears the ghost text.
---@param bufnr integer
---@param reason string
function Suggester:invalidate(bufnr, reason)
  local bs = self:state(bufnr)
  local s = bs.suggestion
  if s then
    self:cancel_request(s, reason)
    bs.suggestion = nil
  end
  self.ghost:clear(bufnr)
end

---@param bufnr integer
function Suggester:stop_timer(bufnr)
  local timer = self:state(bufnr).timer
  if timer then
    timer:stop()
  end
end

--- Forgets `bufnr` entirely (buffer unloaded or client detached).
---@param bufnr integer
function Suggester:detach(bufnr)
  self:invalidate(bufnr, "detached")
  local bs = self.bufs[bufnr]
  if bs and bs.timer then
    bs.timer:stop()
    bs.timer:close()
  end
  self.bufs[bufnr] = nil
end

-- Requests -------------------------------------------------------------------------------------------------------

--- Starts the debounce timer of an automatic request (a running one restarts).
---@param bufnr integer
function Suggester:schedule(bufnr)
  local bs = self:state(bufnr)
  bs.timer = bs.timer or vim.uv.new_timer()
  bs.timer:stop()
  bs.timer:start(self.cfg.debounce_ms, 0, vim.schedule_wrap(function()
    if api.nvim_buf_is_valid(bufnr) then
      self:trigger(bufnr, "auto")
    end
  end))
end

--- Asks the server for a suggestion at the cursor; supersedes (cancels) the one in flight. Returns whether sent.
---@param bufnr integer
---@param kind "auto"|"manual"
---@return boolean
function Suggester:trigger(bufnr, kind)
  self:stop_timer(bufnr)
  if not self.is_enabled() or not in_insert_mode_at(bufnr) then
    return false
  end
  local client = lsp_client.get(bufnr)
  if not client or not lsp_client.supports_inline(client) then
    return false
  end
  self:invalidate(bufnr, "superseded")
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local line = get_line(bufnr, row)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding) --[[@as table]]
  params.context = { triggerKind = kind == "manual" and TRIGGER_INVOKED or TRIGGER_AUTOMATIC }
  ---@type lsp_copilot.Suggestion
  local s = {
    client_id = client.id,
    version = buf_version(bufnr),
    row = row,
    col = col,
    line_before = line:sub(1, col),
    line_after = line:sub(col + 1),
    items = {},
    index = 1,
    typed = "",
    done = false,
    trigger = kind,
  }
  local id ---@type integer|nil
  id = lsp_client.request(client, M.METHOD, params, function(err, result)
    self:on_response(bufnr, s, id, err, result, client.offset_encoding)
  end, bufnr)
  if not id then
    return false
  end
  -- The request flushed pending didChange notifications: the version the server sees is the current one.
  s.version = buf_version(bufnr)
  s.request_id = id
  self:state(bufnr).suggestion = s
  self.log:add("request", { id = id, version = s.version, row = row, col = col, trigger = kind })
  return true
end

--- The buffer and suggestion that request `request_id` of client `client_id` is still filling, if any.
---@param client_id integer
---@param request_id integer
---@return integer|nil, lsp_copilot.Suggestion|nil
function Suggester:find_request(client_id, request_id)
  for bufnr, bs in pairs(self.bufs) do
    local s = bs.suggestion
    if s and s.client_id == client_id and s.request_id == request_id then
      return bufnr, s
    end
  end
  return nil, nil
end

--- lspCopilot/inlineCompletionChunk: redraw the suggestion so far, unless it belongs to a stale request or version.
---@param params table {requestId, uri, version, position, text, done}
---@param ctx lsp.HandlerContext
function Suggester:on_chunk(params, ctx)
  local bufnr, s = self:find_request(ctx.client_id, params.requestId)
  if not bufnr or not s then
    self.log:add("drop", { why = "stale request", id = params.requestId, text = params.text, done = params.done })
    return
  end
  if params.version ~= s.version then
    self.log:add("drop", { why = "stale version", id = params.requestId, version = params.version })
    return
  end
  self.log:add("chunk", { id = params.requestId, text = params.text, done = params.done })
  if type(params.text) ~= "string" or params.text == "" then
    return
  end
  -- The chunk's text is the whole suggestion so far, relative to the request position (= the anchor).
  s.items = { { text = params.text, tail = 0 } }
  s.index = 1
  if not self:sync(bufnr) then
    self:invalidate(bufnr, "chunk does not match the buffer")
  end
end

--- One response item relative to the anchor of `s`, or nil when its range does not contain the anchor.
---@param s lsp_copilot.Suggestion
---@param item table lsp.InlineCompletionItem
---@param encoding string
---@return lsp_copilot.Item|nil
local function normalize_item(s, item, encoding)
  local text = item.insertText
  if type(text) == "table" then
    text = text.value
  end
  if type(text) ~= "string" then
    return nil
  end
  if not item.range then
    return { text = text, tail = 0 }
  end
  local range = item.range
  if range.start.line ~= s.row or range["end"].line ~= s.row then
    return nil
  end
  local line = s.line_before .. s.line_after
  local first = byte_index(line, range.start.character, encoding)
  local last = byte_index(line, range["end"].character, encoding)
  if first > s.col or last < s.col then
    return nil
  end
  local before = line:sub(first + 1, s.col) -- already in the buffer: the suggestion must repeat it
  if not vim.startswith(text, before) then
    return nil
  end
  return { text = text:sub(#before + 1), tail = last - s.col }
end

--- The response: the final items replace the streamed text; stale responses (cancelled, superseded) are dropped.
---@param bufnr integer
---@param s lsp_copilot.Suggestion
---@param id integer|nil
---@param err lsp.ResponseError|nil
---@param result table|nil lsp.InlineCompletionList | lsp.InlineCompletionItem[]
---@param encoding string
function Suggester:on_response(bufnr, s, id, err, result, encoding)
  local bs = self.bufs[bufnr]
  if not bs or bs.suggestion ~= s or s.request_id ~= id then
    self.log:add("drop", { why = "stale response", id = id })
    return
  end
  s.request_id = nil
  s.done = true
  if err then
    self.log:add("error", { id = id, message = err.message, code = err.code })
    self:invalidate(bufnr, "error")
    return
  end
  local raw = result and (result.items or result) or {}
  local items = {}
  for _, item in ipairs(raw) do
    local normalized = normalize_item(s, item, encoding)
    if normalized and normalized.text ~= "" then
      items[#items + 1] = normalized
    end
  end
  self.log:add("response", { id = id, items = vim.tbl_map(function(i)
    return i.text
  end, items) })
  if #items == 0 then
    self:invalidate(bufnr, "empty")
    return
  end
  s.items = items
  s.index = 1
  if not self:sync(bufnr) then
    self:invalidate(bufnr, "response does not match the buffer")
  end
end

-- Display --------------------------------------------------------------------------------------------------------

--- Re-checks the suggestion of `bufnr` against the buffer and the cursor, and redraws it. Typing characters equal to
--- the start of the suggestion advances it. Returns false when it no longer applies (the caller invalidates it).
---@param bufnr integer
---@return boolean
function Suggester:sync(bufnr)
  local s = self:state(bufnr).suggestion
  if not s or not in_insert_mode_at(bufnr) then
    return false
  end
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  if row ~= s.row or col < s.col then
    return false
  end
  local line = get_line(bufnr, row)
  -- Invariant kept: the anchor line is line_before .. typed .. line_after, and the cursor is after `typed`.
  if line:sub(1, s.col) ~= s.line_before or line:sub(col + 1) ~= s.line_after then
    return false
  end
  local typed = line:sub(s.col + 1, col)
  local item = s.items[s.index]
  if not item then
    self.ghost:clear(bufnr)
    return typed == "" -- waiting for the first chunk: any typed character makes the request stale
  end
  if not vim.startswith(item.text, typed) or #typed == #item.text then
    return false
  end
  s.typed = typed
  self.ghost:show(bufnr, row, col, item.text:sub(#typed + 1), line:sub(col + 1, col + item.tail))
  return true
end

--- Whether a suggestion is drawn in `bufnr`.
---@param bufnr integer
---@return boolean
function Suggester:visible(bufnr)
  local bs = self.bufs[bufnr]
  return bs ~= nil and bs.suggestion ~= nil and self.ghost:visible(bufnr)
end

-- Editor events --------------------------------------------------------------------------------------------------

--- TextChangedI: keep a suggestion that was typed through, else drop it and schedule a new request.
---@param bufnr integer
function Suggester:on_text_changed(bufnr)
  if self:state(bufnr).suggestion and self:sync(bufnr) then
    return
  end
  self:invalidate(bufnr, "edited")
  if self.cfg.auto_trigger and self.is_enabled() then
    self:schedule(bufnr)
  end
end

--- CursorMovedI: a move that is not typing through drops the suggestion.
---@param bufnr integer
function Suggester:on_cursor_moved(bufnr)
  if self:state(bufnr).suggestion and not self:sync(bufnr) then
    self:invalidate(bufnr, "moved")
  end
end

--- InsertLeave, BufLeave, popup menu: drop the suggestion and any pending automatic request.
---@param bufnr integer
---@param reason string
function Suggester:on_leave(bufnr, reason)
  self:stop_timer(bufnr)
  self:invalidate(bufnr, reason)
end

-- Commands -------------------------------------------------------------------------------------------------------

--- Inserts the shown suggestion, or its next word or line, and moves the cursor to the end of what was inserted.
--- A partial accept keeps the rest shown. Returns false when nothing was shown.
---@param bufnr integer
---@param how "all"|"word"|"line"
---@return boolean
function Suggester:accept(bufnr, how)
  local bs = self:state(bufnr)
  local s = bs.suggestion
  if not s or not self.ghost:visible(bufnr) or not self:sync(bufnr) then
    return false
  end
  local item = s.items[s.index]
  local rest = item.text:sub(#s.typed + 1)
  local piece = how == "word" and M.next_word(rest) or how == "line" and M.next_line(rest) or rest
  local whole = piece == rest
  local row, col = s.row, s.col + #s.typed
  self:cancel_request(s, "accepted") -- what is on screen is what gets inserted; later chunks must not change it
  local lines = vim.split(piece, "\n", { plain = true })
  -- Start a new undo step, so that `u` takes back the accepted text only.
  vim.cmd("let &undolevels = &undolevels") -- :help undo-break
  api.nvim_buf_set_text(bufnr, row, col, row, col + (whole and item.tail or 0), lines)
  local end_row = row + #lines - 1
  local end_col = (#lines == 1 and col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { end_row + 1, end_col })
  self.log:add("accept", { how = how, text = piece })
  if whole then
    bs.suggestion = nil
    self.ghost:clear(bufnr)
    return true
  end
  -- Re-anchor the rest of the suggestion at the new cursor; the overwritten tail moved along with it.
  local line = get_line(bufnr, end_row)
  s.row, s.col = end_row, end_col
  s.line_before, s.line_after = line:sub(1, end_col), line:sub(end_col + 1)
  s.items = { { text = rest:sub(#piece + 1), tail = item.tail } }
  s.index, s.typed, s.done = 1, "", true
  s.version = buf_version(bufnr)
  if not self:sync(bufnr) then
    self:invalidate(bufnr, "accepted")
  end
  return true
end

--- Shows the next (step 1) or previous (step -1) item that still matches what was typed. Returns whether one is shown.
---@param bufnr integer
---@param step integer
---@return boolean
function Suggester:cycle(bufnr, step)
  local s = self:state(bufnr).suggestion
  if not s or #s.items < 2 then
    return self:visible(bufnr)
  end
  for _ = 1, #s.items do
    s.index = (s.index - 1 + step) % #s.items + 1
    if vim.startswith(s.items[s.index].text, s.typed) and #s.items[s.index].text > #s.typed then
      break
    end
  end
  if not self:sync(bufnr) then
    self:invalidate(bufnr, "cycled")
    return false
  end
  return true
end

--- Hides the suggestion and cancels its request. Returns whether there was one (shown or in flight).
---@param bufnr integer
---@return boolean
function Suggester:dismiss(bufnr)
  self:stop_timer(bufnr)
  local had = self:state(bufnr).suggestion ~= nil
  self:invalidate(bufnr, "dismissed")
  return had
end

--- A copy of the suggestion state of `bufnr` (for :LspCopilot status, tests and debugging); nil when none.
---@param bufnr integer
---@return table|nil
function Suggester:snapshot(bufnr)
  local bs = self.bufs[bufnr]
  local s = bs and bs.suggestion
  if not s then
    return nil
  end
  local copy = vim.deepcopy(s)
  copy.visible = self.ghost:visible(bufnr)
  copy.shown = self.ghost:read(bufnr)
  return copy
end

return M
