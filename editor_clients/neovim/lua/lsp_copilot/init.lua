--- lsp-copilot: streaming ghost-text completion from the lsp-copilot language server.
local config = require("lsp_copilot.config")
local lsp_client = require("lsp_copilot.client")

local api = vim.api
local M = {}

---@class lsp_copilot.ServerStatus  lspCopilot/status (notification or request result)
---@field state "loading"|"ready"|"generating"|"error"|"disabled"
---@field model string|nil
---@field message string|nil
---@field device string|nil
---@field draft string|nil
---@field cacheHitRate number|nil
---@field requests integer|nil

---@class lsp_copilot.Plugin  Everything setup() creates; one per setup() call.
---@field cfg lsp_copilot.Config
---@field enabled boolean
---@field ghost lsp_copilot.Ghost
---@field log lsp_copilot.Log
---@field suggester lsp_copilot.Suggester
---@field status table<integer, lsp_copilot.ServerStatus> client id -> last status notification
---@field augroup integer
local Plugin = {}
Plugin.__index = Plugin

---@param cfg lsp_copilot.Config
---@return lsp_copilot.Plugin
function Plugin.new(cfg)
  local self = setmetatable({ cfg = cfg, enabled = true, status = {} }, Plugin)
  self.ghost = require("lsp_copilot.ghost").new()
  self.log = require("lsp_copilot.log").new(cfg.log_entries)
  self.suggester = require("lsp_copilot.suggest").new(cfg, self.ghost, self.log, function()
    return self.enabled
  end)
  return self
end

---@return lsp_copilot.Handlers
function Plugin:handlers()
  return {
    on_chunk = function(params, ctx)
      self.suggester:on_chunk(params, ctx)
    end,
    on_status = function(params, ctx)
      self.status[ctx.client_id] = params
      self.log:add("status", params)
      api.nvim_exec_autocmds("User", { pattern = "LspCopilotStatus", modeline = false, data = params })
    end,
  }
end

--- Whether buffer `bufnr` is one to start the server for.
---@param bufnr integer
---@return boolean
function Plugin:wants(bufnr)
  local ft = vim.bo[bufnr].filetype
  if vim.bo[bufnr].buftype ~= "" or ft == "" then
    return false
  end
  if vim.tbl_contains(self.cfg.filetypes, "*") then
    return not vim.tbl_contains(self.cfg.exclude_filetypes, ft)
  end
  return vim.tbl_contains(self.cfg.filetypes, ft)
end

---@param bufnr integer
function Plugin:maybe_start(bufnr)
  if api.nvim_buf_is_valid(bufnr) and self:wants(bufnr) then
    lsp_client.start(self.cfg, bufnr, self:handlers())
  end
end

--- Buffer-local insert-mode key: runs `action`, or types the key itself when the action did nothing.
---@param bufnr integer
---@param lhs string|false
---@param desc string
---@param action fun(): boolean
local function map(bufnr, lhs, desc, action)
  if not lhs then
    return
  end
  vim.keymap.set("i", lhs, function()
    if not action() then
      api.nvim_feedkeys(vim.keycode(lhs), "n", false)
    end
  end, { buffer = bufnr, desc = "lsp-copilot: " .. desc, silent = true })
end

--- LspAttach of our client: keys and the buffer's editing events.
---@param bufnr integer
function Plugin:on_attach(bufnr)
  local s, keys = self.suggester, self.cfg.keymaps
  map(bufnr, keys.accept, "accept suggestion", function()
    return s:accept(bufnr, "all")
  end)
  map(bufnr, keys.accept_word, "accept word", function()
    return s:accept(bufnr, "word")
  end)
  map(bufnr, keys.accept_line, "accept line", function()
    return s:accept(bufnr, "line")
  end)
  map(bufnr, keys.dismiss, "dismiss suggestion", function()
    return s:dismiss(bufnr)
  end)
  map(bufnr, keys.next, "next suggestion", function()
    return s:cycle(bufnr, 1)
  end)
  map(bufnr, keys.prev, "previous suggestion", function()
    return s:cycle(bufnr, -1)
  end)
  map(bufnr, keys.trigger, "suggest", function()
    s:trigger(bufnr, "manual")
    return true
  end)
  api.nvim_clear_autocmds({ group = self.augroup, buffer = bufnr })
  local function on(event, fn)
    api.nvim_create_autocmd(event, { group = self.augroup, buffer = bufnr, callback = fn })
  end
  on("TextChangedI", function()
    s:on_text_changed(bufnr)
  end)
  on("CursorMovedI", function()
    s:on_cursor_moved(bufnr)
  end)
  on("TextChangedP", function()
    s:on_leave(bufnr, "popup menu")
  end)
  on({ "InsertLeave", "BufLeave" }, function(args)
    s:on_leave(bufnr, args.event)
  end)
  on("BufUnload", function()
    s:detach(bufnr)
  end)
end

function Plugin:install()
  self.augroup = api.nvim_create_augroup("lsp_copilot", { clear = true })
  api.nvim_create_autocmd("FileType", {
    group = self.augroup,
    callback = function(args)
      self:maybe_start(args.buf)
    end,
  })
  api.nvim_create_autocmd("LspAttach", {
    group = self.augroup,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == lsp_client.NAME then
        self:on_attach(args.buf)
      end
    end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = self.augroup,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == lsp_client.NAME then
        self.suggester:detach(args.buf)
      end
    end,
  })
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) then
      self:maybe_start(bufnr)
    end
  end
end

---@param on boolean
function Plugin:set_enabled(on)
  self.enabled = on
  if not on then
    for bufnr in pairs(self.suggester.bufs) do
      self.suggester:on_leave(bufnr, "disabled")
    end
  end
  self.log:add(on and "enable" or "disable")
end

--- The status of the server attached to `bufnr` (or any), asking it for details; nil when none runs.
---@param bufnr integer
---@return lsp_copilot.ServerStatus|nil, vim.lsp.Client|nil
function Plugin:server_status(bufnr)
  local client = lsp_client.get(bufnr) or lsp_client.all()[1]
  if not client then
    return nil, nil
  end
  local status = vim.deepcopy(self.status[client.id] or {})
  local reply = lsp_client.request_sync(client, lsp_client.METHOD_STATUS, vim.empty_dict(), 1000, bufnr)
  if reply and reply.result then
    status = vim.tbl_extend("force", status, reply.result)
  end
  return status, client
end

---@param bufnr integer
---@return string
function Plugin:status_line(bufnr)
  local parts = { "lsp-copilot: " .. (self.enabled and "enabled" or "disabled") }
  local status, client = self:server_status(bufnr)
  if not client then
    parts[#parts + 1] = "no server attached to this buffer"
  else
    status = status or {}
    parts[#parts + 1] = ("server %s (client %d)"):format(status.state or "starting", client.id)
    for _, key in ipairs({ "model", "draft", "device", "requests", "cacheHitRate", "message" }) do
      if status[key] ~= nil and status[key] ~= vim.NIL and status[key] ~= "" then
        parts[#parts + 1] = ("%s=%s"):format(key, tostring(status[key]))
      end
    end
  end
  return table.concat(parts, ", ")
end

--- A scratch buffer with the plugin's recent events and where the server's logs are.
function Plugin:open_log()
  local lines = {
    "# lsp-copilot events (newest last); server stderr: " .. vim.lsp.get_log_path(),
  }
  local file = vim.tbl_get(self.cfg.settings, "log", "file")
  if type(file) == "string" and file ~= "" then
    lines[#lines + 1] = "# server log file: " .. file
  end
  vim.list_extend(lines, self.log:lines())
  vim.cmd("botright new")
  local bufnr = api.nvim_get_current_buf()
  vim.bo[bufnr].buftype = "nofile"
  vim.bo[bufnr].bufhidden = "wipe"
  vim.bo[bufnr].swapfile = false
  api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.bo[bufnr].modifiable = false
  pcall(api.nvim_buf_set_name, bufnr, "lsp_copilot://log")
end

-- Public API (acts on the current buffer) ------------------------------------------------------------------------

---@type lsp_copilot.Plugin|nil
local plugin = nil

---@return lsp_copilot.Plugin
local function get()
  if not plugin then
    error("lsp_copilot: call require('lsp_copilot').setup() first", 0)
  end
  return plugin
end

--- Starts lsp-copilot for the configured filetypes. Calling it again replaces the previous setup.
---@param opts lsp_copilot.Config|table|nil
function M.setup(opts)
  local cfg = config.resolve(opts)
  if vim.fn.has("nvim-0.10") ~= 1 then
    error("lsp_copilot needs Neovim 0.10 or newer", 0)
  end
  if plugin then
    plugin:set_enabled(false)
  end
  plugin = Plugin.new(cfg)
  plugin:install()
end

--- The active plugin object (nil before setup); for health checks and tests.
---@return lsp_copilot.Plugin|nil
function M.plugin()
  return plugin
end

function M.enable()
  get():set_enabled(true)
end

function M.disable()
  get():set_enabled(false)
end

function M.toggle()
  local p = get()
  p:set_enabled(not p.enabled)
end

---@return boolean
function M.is_enabled()
  return get().enabled
end

--- Asks for a suggestion at the cursor now (insert mode). Returns whether a request was sent.
---@return boolean
function M.suggest()
  return get().suggester:trigger(api.nvim_get_current_buf(), "manual")
end

---@return boolean accepted
function M.accept()
  return get().suggester:accept(api.nvim_get_current_buf(), "all")
end

---@return boolean accepted
function M.accept_word()
  return get().suggester:accept(api.nvim_get_current_buf(), "word")
end

---@return boolean accepted
function M.accept_line()
  return get().suggester:accept(api.nvim_get_current_buf(), "line")
end

---@return boolean dismissed
function M.dismiss()
  return get().suggester:dismiss(api.nvim_get_current_buf())
end

---@return boolean shown
function M.next()
  return get().suggester:cycle(api.nvim_get_current_buf(), 1)
end

---@return boolean shown
function M.prev()
  return get().suggester:cycle(api.nvim_get_current_buf(), -1)
end

---@return boolean
function M.is_visible()
  return get().suggester:visible(api.nvim_get_current_buf())
end

--- The suggestion state of a buffer (default: current), with `shown` = the text read back from the extmarks.
---@param bufnr integer|nil
---@return table|nil
function M.get_suggestion(bufnr)
  return get().suggester:snapshot(bufnr or api.nvim_get_current_buf())
end

---@return string
function M.status()
  return get():status_line(api.nvim_get_current_buf())
end

--- Replaces the `lspCopilot` settings tree and makes the running servers pull it again.
---@param settings table
function M.set_settings(settings)
  local p = get()
  p.cfg = config.resolve(vim.tbl_extend("force", {}, p.cfg, { settings = settings }))
  p.suggester.cfg = p.cfg
  lsp_client.push_settings(p.cfg.settings)
end

--- :LspCopilot {name}
---@param name string
function M.command(name)
  local p = get()
  if name == "enable" then
    p:set_enabled(true)
  elseif name == "disable" then
    p:set_enabled(false)
  elseif name == "toggle" then
    p:set_enabled(not p.enabled)
  elseif name == "log" then
    p:open_log()
    return
  elseif name == "suggest" then
    M.suggest()
    return
  elseif name ~= "status" then
    vim.notify(("lsp-copilot: unknown subcommand %q (enable, disable, toggle, status, log, suggest)"):format(name),
      vim.log.levels.ERROR)
    return
  end
  vim.notify(p:status_line(api.nvim_get_current_buf()), vim.log.levels.INFO)
end

return M
