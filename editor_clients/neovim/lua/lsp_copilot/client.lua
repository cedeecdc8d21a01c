--- lsp-copilot: starts `lsp-copilot serve` with vim.lsp.start and routes its custom notifications.
local config = require("lsp_copilot.config")

local M = {}

M.NAME = "lsp_copilot"
M.METHOD_CHUNK = "lspCopilot/inlineCompletionChunk"
M.METHOD_STATUS = "lspCopilot/status"

--- Keys of the settings tree whose value is a list (an empty one must go on the wire as [] not {}).
local LIST_KEYS = { disabledLanguages = true }

--- The settings tree as it goes on the wire: empty maps become JSON objects (vim.json writes {} as []).
---@param tree table
---@param key string|nil
---@return table
function M.wire_settings(tree, key)
  if next(tree) == nil then
    return (key and LIST_KEYS[key]) and {} or vim.empty_dict()
  end
  local out = {}
  for k, v in pairs(tree) do
    out[k] = type(v) == "table" and M.wire_settings(v, k) or v
  end
  return out
end

---@class lsp_copilot.Handlers
---@field on_chunk fun(params: table, ctx: lsp.HandlerContext)
---@field on_status fun(params: table, ctx: lsp.HandlerContext)

--- The vim.lsp.start configuration for a buffer.
---@param cfg lsp_copilot.Config
---@param bufnr integer
---@param handlers lsp_copilot.Handlers
---@return vim.lsp.ClientConfig
function M.client_config(cfg, bufnr, handlers)
  local settings = M.wire_settings(cfg.settings)
  local init_options = vim.deepcopy(settings)
  init_options.streaming = cfg.streaming
  local capabilities = vim.tbl_deep_extend("force", vim.lsp.protocol.make_client_capabilities(), {
    experimental = { lspCopilot = { streaming = cfg.streaming } },
    textDocument = { inlineCompletion = { dynamicRegistration = false } },
  })
  local root = vim.fs.root(bufnr, cfg.root_markers) or vim.fn.getcwd()
  return {
    name = M.NAME,
    cmd = config.server_cmd(cfg),
    cmd_env = cfg.cmd_env,
    cmd_cwd = cfg.cmd_cwd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = init_options,
    settings = { lspCopilot = settings },
    capabilities = capabilities,
    handlers = {
      [M.METHOD_CHUNK] = function(_, params, ctx)
        handlers.on_chunk(params, ctx)
      end,
      [M.METHOD_STATUS] = function(_, params, ctx)
        handlers.on_status(params, ctx)
      end,
    },
  }
end

--- Starts (or reuses, same root) the server for `bufnr` and attaches it; returns the client id or nil.
---@param cfg lsp_copilot.Config
---@param bufnr integer
---@param handlers lsp_copilot.Handlers
---@return integer|nil
function M.start(cfg, bufnr, handlers)
  local cmd = config.server_cmd(cfg)
  if vim.fn.executable(cmd[1]) ~= 1 then
    -- Reported outside the FileType autocommand that got us here, so that opening the file is not disturbed.
    vim.schedule(function()
      vim.notify_once(
        ("lsp-copilot: server command %q is not executable; set `cmd` or `python` in setup()"):format(cmd[1]),
        vim.log.levels.ERROR
      )
    end)
    return nil
  end
  return vim.lsp.start(M.client_config(cfg, bufnr, handlers), { bufnr = bufnr })
end

--- The lsp-copilot client attached to `bufnr`, if any.
---@param bufnr integer
---@return vim.lsp.Client|nil
function M.get(bufnr)
  return vim.lsp.get_clients({ name = M.NAME, bufnr = bufnr })[1]
end

--- Every running lsp-copilot client.
---@return vim.lsp.Client[]
function M.all()
  return vim.lsp.get_clients({ name = M.NAME })
end

--- Whether the server advertises inline completion.
---@param client vim.lsp.Client
---@return boolean
function M.supports_inline(client)
  return client.server_capabilities ~= nil and client.server_capabilities.inlineCompletionProvider ~= nil
end

local HAS_METHODS = vim.fn.has("nvim-0.11") == 1 -- Client:request() style; 0.10 has client.request()

--- Sends a request; returns the JSON-RPC id, or nil when the client is shutting down.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@param handler fun(err: lsp.ResponseError|nil, result: any)
---@param bufnr integer
---@return integer|nil
function M.request(client, method, params, handler, bufnr)
  local ok, id
  if HAS_METHODS then
    ok, id = client:request(method, params, handler, bufnr)
  else
    ok, id = client.request(method, params, handler, bufnr) ---@diagnostic disable-line
  end
  return ok and id or nil
end

--- Sends a request and waits up to `timeout_ms` for its reply ({err, result}); nil on timeout.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@param timeout_ms integer
---@param bufnr integer
---@return {err: lsp.ResponseError|nil, result: any}|nil
function M.request_sync(client, method, params, timeout_ms, bufnr)
  if HAS_METHODS then
    return (client:request_sync(method, params, timeout_ms, bufnr))
  end
  return (client.request_sync(method, params, timeout_ms, bufnr)) ---@diagnostic disable-line
end

--- Sends $/cancelRequest for `id`.
---@param client vim.lsp.Client
---@param id integer
function M.cancel(client, id)
  if HAS_METHODS then
    client:cancel_request(id)
  else
    client.cancel_request(id) ---@diagnostic disable-line
  end
end

---@param client vim.lsp.Client
---@param method string
---@param params table
function M.notify(client, method, params)
  if HAS_METHODS then
    client:notify(method, params)
  else
    client.notify(method, params) ---@diagnostic disable-line
  end
end

--- Replaces the settings on every client and tells the servers to pull them again.
---@param settings table
function M.push_settings(settings)
  local wire = M.wire_settings(settings)
  for _, client in ipairs(M.all()) do
    client.settings = { lspCopilot = wire }
    M.notify(client, "workspace/didChangeConfiguration", { settings = { lspCopilot = wire } })
  end
end

return M
