-- lsp-copilot: registers the :LspCopilot command only; all logic is required lazily from lua/lsp_copilot/.
if vim.g.loaded_lsp_copilot then
  return
end
vim.g.loaded_lsp_copilot = true

local subcommands = { "enable", "disable", "toggle", "status", "log", "suggest" }

vim.api.nvim_create_user_command("LspCopilot", function(args)
  require("lsp_copilot").command(args.fargs[1] or "status")
end, {
  nargs = "?",
  desc = "lsp-copilot: enable | disable | toggle | status | log | suggest",
  complete = function(arg_lead)
    return vim.tbl_filter(function(name)
      return vim.startswith(name, arg_lead)
    end, subcommands)
  end,
})
