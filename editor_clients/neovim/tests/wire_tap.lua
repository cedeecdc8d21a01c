-- lsp-copilot test helper: records what the server really sent (requests, chunks, responses, cancels) at the RPC
-- layer, independently of the plugin, and what the ghost text looked like right after the plugin handled each message.
local api = vim.api

---@class WireTap
---@field requests table[]   {id, method, params, t}
---@field responses table[]  {id, method, result, err, ghost_after, t}
---@field chunks table[]     {params, ghost_after, t}
---@field cancels table[]    {id, t}
local tap = { requests = {}, responses = {}, chunks = {}, cancels = {}, statuses = {} }
_G.tap = tap

local function now()
  return vim.uv.hrtime() / 1e6
end

--- The ghost text drawn in `bufnr`, read from the namespace's extmarks; nil when none.
---@param bufnr integer
---@return table|nil {count, row, col, text, virt_text_pos, hl, virt_lines}
function tap.read_ghost(bufnr)
  local ns = api.nvim_get_namespaces().lsp_copilot
  if not ns then
    return nil
  end
  local marks = api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local _, row, col, d = unpack(marks[1])
  local lines, hls = {}, {}
  local first = {}
  for _, chunk in ipairs(d.virt_text or {}) do
    first[#first + 1] = chunk[1]
    hls[#hls + 1] = chunk[2]
  end
  lines[1] = table.concat(first)
  for _, vl in ipairs(d.virt_lines or {}) do
    local parts = {}
    for _, chunk in ipairs(vl) do
      parts[#parts + 1] = chunk[1]
      hls[#hls + 1] = chunk[2]
    end
    lines[#lines + 1] = table.concat(parts)
  end
  return {
    count = #marks,
    row = row,
    col = col,
    text = table.concat(lines, "\n"),
    virt_text_pos = d.virt_text_pos,
    n_virt_lines = #(d.virt_lines or {}),
    hl = hls,
  }
end

local function ghost_now()
  return tap.read_ghost(api.nvim_get_current_buf()) or vim.NIL
end

---@param client vim.lsp.Client
local function wrap(client)
  if client.name ~= "lsp_copilot" or client._tapped then
    return
  end
  client._tapped = true
  local rpc = client.rpc
  local request, notify = rpc.request, rpc.notify
  rpc.request = function(method, params, callback, ...)
    local id
    local ok, rid = request(method, params, function(err, result)
      local entry = { id = id, method = method, result = result or vim.NIL, err = err or vim.NIL, t = now() }
      tap.responses[#tap.responses + 1] = entry
      callback(err, result)
      -- The handler already ran (rpc callbacks are scheduled, the handler runs inside this callback).
      entry.ghost_after = ghost_now()
    end, ...)
    id = rid
    tap.requests[#tap.requests + 1] = { id = rid, method = method, params = params, t = now() }
    return ok, rid
  end
  rpc.notify = function(method, params)
    if method == "$/cancelRequest" then
      tap.cancels[#tap.cancels + 1] = { id = params.id, t = now() }
    end
    return notify(method, params)
  end
  for _, method in ipairs({ "lspCopilot/inlineCompletionChunk", "lspCopilot/status" }) do
    local handler = client.handlers[method]
    client.handlers[method] = function(err, params, ctx)
      local entry = { params = params, t = now() }
      if method == "lspCopilot/status" then
        tap.statuses[#tap.statuses + 1] = entry
      else
        tap.chunks[#tap.chunks + 1] = entry
      end
      if handler then
        handler(err, params, ctx)
      end
      entry.ghost_after = ghost_now()
    end
  end
end

api.nvim_create_autocmd("LspAttach", {
  callback = function(args)
    wrap(assert(vim.lsp.get_client_by_id(args.data.client_id)))
  end,
})

--- Replays a recorded chunk (as a late delivery from the network would) and returns the ghost text afterwards.
---@param params table
---@return table|vim.NIL
function tap.replay_chunk(params)
  local client = vim.lsp.get_clients({ name = "lsp_copilot" })[1]
  client.handlers["lspCopilot/inlineCompletionChunk"](nil, params, { method = "lspCopilot/inlineCompletionChunk",
    client_id = client.id })
  return ghost_now()
end

function tap.reset()
  tap.requests, tap.responses, tap.chunks, tap.cancels = {}, {}, {}, {}
end

function tap.snapshot()
  return { requests = tap.requests, responses = tap.responses, chunks = tap.chunks, cancels = tap.cancels,
    statuses = tap.statuses }
end
