--- lsp-copilot: :checkhealth lsp_copilot (Neovim version, server command, running server, model state).
local M = {}

function M.check()
  local health = vim.health
  health.start("lsp-copilot")
  local v = vim.version()
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok(("Neovim %d.%d.%d"):format(v.major, v.minor, v.patch))
  else
    health.error(("Neovim %d.%d.%d is too old: lsp_copilot needs 0.10 or newer"):format(v.major, v.minor, v.patch))
  end
  if vim.lsp.inline_completion then
    health.info("vim.lsp.inline_completion is available; lsp_copilot uses its own streaming renderer")
  end
  local copilot = require("lsp_copilot")
  local plugin = copilot.plugin()
  if not plugin then
    health.warn("setup() has not been called", { "add require('lsp_copilot').setup({}) to your config" })
    return
  end
  local cmd = require("lsp_copilot.config").server_cmd(plugin.cfg)
  if vim.fn.executable(cmd[1]) == 1 then
    health.ok(("server command: %s (%s)"):format(table.concat(cmd, " "), vim.fn.exepath(cmd[1])))
  else
    health.error(("server command %q is not executable"):format(cmd[1]), {
      "pip install lsp-copilot, or set `python = '/path/to/python'` or `cmd = {...}` in setup()",
    })
  end
  health.info("suggestions are " .. (plugin.enabled and "enabled" or "disabled (:LspCopilot enable)"))
  local clients = require("lsp_copilot.client").all()
  if #clients == 0 then
    health.warn("no lsp-copilot server is running", { "open a file of a configured filetype" })
    return
  end
  for _, client in ipairs(clients) do
    local status = plugin.status[client.id] or {}
    local reply = require("lsp_copilot.client").request_sync(client, "lspCopilot/status", vim.empty_dict(), 2000, 0)
    if reply and reply.result then
      status = vim.tbl_extend("force", status, reply.result)
    end
    local line = ("server running (client %d, root %s): state %s, model %s, device %s"):format(
      client.id, client.root_dir or "?", tostring(status.state), tostring(status.model), tostring(status.device))
    if status.state == "error" then
      health.error(line .. ": " .. tostring(status.message))
    elseif status.state == nil then
      health.warn(line .. " (no status answer)")
    else
      health.ok(line)
    end
    if client.server_capabilities and not client.server_capabilities.inlineCompletionProvider then
      health.error("the server does not advertise inlineCompletionProvider")
    end
  end
end

return M
