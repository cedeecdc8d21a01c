--- lsp-copilot: defaults and validation of the options given to setup().
local M = {}

---@class lsp_copilot.Keymaps
---@field accept string|false       Accept the whole suggestion (falls back to the key itself when nothing is shown).
---@field accept_word string|false  Accept the next word of the suggestion.
---@field accept_line string|false  Accept the rest of the suggestion's current line.
---@field dismiss string|false      Hide the suggestion and cancel the request in flight.
---@field next string|false         Show the next suggestion of the list.
---@field prev string|false         Show the previous suggestion of the list.
---@field trigger string|false      Ask for a suggestion now (manual trigger).

---@class lsp_copilot.Config
---@field cmd string[]|nil            Server command; nil: {python, "-m", "lsp_copilot", "serve"} when `python` is set, else {"lsp-copilot", "serve"}.
---@field python string|nil           Python interpreter that has the lsp_copilot package installed.
---@field cmd_env table<string, string>|nil  Extra environment of the server process.
---@field cmd_cwd string|nil          Working directory of the server process.
---@field filetypes string[]          Filetypes to attach to; {"*"} = every file buffer.
---@field exclude_filetypes string[]  Filetypes never attached to (only used with {"*"}).
---@field root_markers string[]       Files or directories that mark the workspace root.
---@field auto_trigger boolean        Ask for suggestions while typing in insert mode.
---@field debounce_ms integer         Quiet time after the last keystroke before an automatic request.
---@field streaming boolean           Opt in to lspCopilot/inlineCompletionChunk (ghost text grows while generated).
---@field keymaps lsp_copilot.Keymaps Insert-mode keys, buffer-local to attached buffers; false disables one.
---@field settings table              The `lspCopilot` settings tree, passed through unchanged (the server validates it).
---@field log_entries integer         How many plugin events :LspCopilot log keeps.

---@type lsp_copilot.Config
M.defaults = {
  cmd = nil,
  python = nil,
  cmd_env = nil,
  cmd_cwd = nil,
  filetypes = { "*" },
  exclude_filetypes = { "help", "gitcommit", "gitrebase", "hgcommit", "svn", "cvs", "qf", "netrw" },
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "Cargo.toml", "go.mod", ".hg" },
  auto_trigger = true,
  debounce_ms = 75,
  streaming = true,
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-C-Right>",
    dismiss = "<C-]>",
    next = "<M-]>",
    prev = "<M-[>",
    trigger = "<M-\\>",
  },
  settings = {},
  log_entries = 500,
}

--- Checks one value; raises "lsp_copilot.setup: <name>: expected <type>, got <value>" on a mismatch.
---@param name string
---@param value any
---@param expected string|fun(v: any): boolean
---@param optional boolean
---@param message string|nil
local function check(name, value, expected, optional, message)
  local ok, err
  if vim.fn.has("nvim-0.11") == 1 then
    ok, err = pcall(vim.validate, name, value, expected, optional, message)
  else
    ok, err = pcall(vim.validate, { [name] = { value, expected, optional } })
  end
  if not ok then
    error("lsp_copilot.setup: " .. tostring(err), 0)
  end
end

---@param v any
---@return boolean
local function is_string_list(v)
  return type(v) == "table" and vim.iter(v):all(function(x)
    return type(x) == "string"
  end)
end

---@param v any
---@return boolean
local function is_key(v)
  return v == false or (type(v) == "string" and v ~= "")
end

--- Options whose default is nil (absent from M.defaults but valid).
local NIL_DEFAULTS = { cmd = true, python = true, cmd_env = true, cmd_cwd = true }

--- Raises on keys that are neither in `known` nor in `extra` (a typo must not be silently ignored).
---@param where string
---@param given table
---@param known table
---@param extra table<string, boolean>
local function reject_unknown(where, given, known, extra)
  for key in pairs(given) do
    if known[key] == nil and not extra[key] then
      local names = vim.list_extend(vim.tbl_keys(known), vim.tbl_keys(extra))
      table.sort(names)
      error(("lsp_copilot.setup: unknown option %s%s (known: %s)"):format(where, key, table.concat(names, ", ")), 0)
    end
  end
end

--- Merges `opts` over the defaults and validates the result; raises a clear error on bad input.
---@param opts table|nil
---@return lsp_copilot.Config
function M.resolve(opts)
  opts = opts or {}
  check("opts", opts, "table", false)
  reject_unknown("", opts, M.defaults, NIL_DEFAULTS)
  if opts.keymaps ~= nil then
    check("keymaps", opts.keymaps, "table", false)
    reject_unknown("keymaps.", opts.keymaps, M.defaults.keymaps, {})
  end
  ---@type lsp_copilot.Config
  local cfg = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  -- Lists replace, never merge with, the default list.
  for _, key in ipairs({ "filetypes", "exclude_filetypes", "root_markers" }) do
    if opts[key] ~= nil then
      cfg[key] = opts[key]
    end
  end
  if opts.settings ~= nil then
    cfg.settings = opts.settings
  end
  check("cmd", cfg.cmd, function(v)
    return is_string_list(v) and #v > 0
  end, true, "non-empty list of strings")
  check("python", cfg.python, "string", true)
  check("cmd_env", cfg.cmd_env, "table", true)
  check("cmd_cwd", cfg.cmd_cwd, "string", true)
  check("filetypes", cfg.filetypes, is_string_list, false, "list of strings")
  check("exclude_filetypes", cfg.exclude_filetypes, is_string_list, false, "list of strings")
  check("root_markers", cfg.root_markers, is_string_list, false, "list of strings")
  check("auto_trigger", cfg.auto_trigger, "boolean", false)
  check("debounce_ms", cfg.debounce_ms, function(v)
    return type(v) == "number" and v >= 0 and v == math.floor(v)
  end, false, "integer >= 0")
  check("streaming", cfg.streaming, "boolean", false)
  check("settings", cfg.settings, "table", false)
  check("log_entries", cfg.log_entries, function(v)
    return type(v) == "number" and v >= 1
  end, false, "number >= 1")
  for name, key in pairs(cfg.keymaps) do
    check("keymaps." .. name, key, is_key, false, "non-empty string or false")
  end
  return cfg
end

--- The server command for a resolved config.
---@param cfg lsp_copilot.Config
---@return string[]
function M.server_cmd(cfg)
  if cfg.cmd then
    return cfg.cmd
  end
  if cfg.python then
    return { cfg.python, "-m", "lsp_copilot", "serve" }
  end
  return { "lsp-copilot", "serve" }
end

return M
