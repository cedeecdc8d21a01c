/** The extension's state: one language client, the suggestion controller, the status bar and the commands. */

import * as fs from 'node:fs';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ResponseError,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';
import { SuggestionController } from './core/controller';
import { Methods, parseStatus } from './core/protocol';
import { DEFAULT_LAUNCH, LaunchCommand, ServerLaunchSettings, resolveServerCommand } from './core/serverCommand';
import { JsonObject, contributedKeys, explicitSettings, initializationOptions, isLanguageEnabled, serverSettings } from './core/settings';
import { InlineProvider } from './inlineProvider';
import { StatusBar } from './statusBar';

export const SECTION = 'lspCopilot';
const ENABLED_KEY = 'lspCopilot.enabled';
const DOCUMENT_SELECTOR = [{ scheme: 'file' }, { scheme: 'untitled' }];

export const Commands = {
  toggle: 'lspCopilot.toggle',
  trigger: 'lspCopilot.trigger',
  showLog: 'lspCopilot.showLog',
  restartServer: 'lspCopilot.restartServer',
} as const;

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** `lspCopilot.server.*` with wrong types replaced by defaults. */
function readLaunchSettings(config: vscode.WorkspaceConfiguration): ServerLaunchSettings {
  const strings = (value: unknown): string[] | undefined =>
    Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
  const pythonPath = config.get<unknown>('server.pythonPath');
  return {
    command: strings(config.get('server.command')) ?? DEFAULT_LAUNCH.command,
    pythonPath: typeof pythonPath === 'string' ? pythonPath : DEFAULT_LAUNCH.pythonPath,
    extraArgs: strings(config.get('server.extraArgs')) ?? DEFAULT_LAUNCH.extraArgs,
  };
}

/** What `activate` returns: enough for the @vscode/test-electron suite to observe the extension. */
export interface CopilotApi {
  readonly controller: SuggestionController;
  readonly provider: InlineProvider;
  readonly client: LanguageClient | undefined;
  readonly enabled: boolean;
  readonly statusText: string | undefined;
}

export class Copilot implements vscode.Disposable, CopilotApi {
  readonly output: vscode.LogOutputChannel;
  readonly controller: SuggestionController;
  private readonly statusBar: StatusBar;
  readonly provider: InlineProvider;
  private readonly disposables: vscode.Disposable[] = [];
  private languageClient: LanguageClient | undefined;
  /** Keys under lspCopilot that package.json contributes, e.g. "completion.maxTokens". */
  private readonly settingKeys: string[];
  private launch: LaunchCommand | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('lsp-copilot', { log: true });
    this.settingKeys = contributedKeys(context.extension.packageJSON);
    this.statusBar = new StatusBar(Commands.toggle);
    const toWire = (uri: vscode.Uri): string => this.languageClient?.code2ProtocolConverter.asUri(uri) ?? uri.toString();
    this.controller = new SuggestionController({
      send: (params, token) => this.requireClient().sendRequest(Methods.inlineCompletion, params, token),
      refresh: (uri) => this.provider.refresh(uri),
      cursor: (uri) => this.provider.cursor(uri),
      log: (message) => this.output.debug(message),
    });
    this.provider = new InlineProvider(this.controller, { wants: (doc) => this.wants(doc) }, toWire);
    this.statusBar.setClient({ enabled: this.enabled });
    this.disposables.push(
      this.output,
      this.statusBar,
      vscode.commands.registerCommand(Commands.toggle, () => this.toggle()),
      vscode.commands.registerCommand(Commands.trigger, () => this.trigger()),
      vscode.commands.registerCommand(Commands.showLog, () => this.output.show()),
      vscode.commands.registerCommand(Commands.restartServer, () => this.restart()),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
      vscode.workspace.onDidCloseTextDocument((doc) => this.controller.invalidate(toWire(doc.uri))),
      vscode.languages.registerInlineCompletionItemProvider(DOCUMENT_SELECTOR, {
        provideInlineCompletionItems: (document, position, context, token) =>
          this.provider.provide(document, position, context, token),
      }),
    );
  }

  get client(): LanguageClient | undefined {
    return this.languageClient;
  }

  get enabled(): boolean {
    return this.context.globalState.get<boolean>(ENABLED_KEY, true);
  }

  get statusText(): string | undefined {
    return this.statusBar.current?.state;
  }

  /** Start the server; failures are shown to the user and logged, never thrown into activation. */
  async start(): Promise<void> {
    const client = this.createClient();
    this.languageClient = client;
    this.statusBar.setClient({ running: 'starting' });
    try {
      await client.start();
      void this.pullStatus(client);
    } catch (error) {
      this.statusBar.setClient({ running: 'stopped' });
      const launch = this.launch ? [this.launch.command, ...this.launch.args].join(' ') : '?';
      this.output.error(`could not start the server (${launch}): ${String(error)}`);
      void vscode.window
        .showErrorMessage(`lsp-copilot: could not start the server (${launch}). Set lspCopilot.server.pythonPath or .command.`, 'Show Log', 'Open Settings')
        .then((choice) => {
          if (choice === 'Show Log') {
            this.output.show();
          } else if (choice === 'Open Settings') {
            void vscode.commands.executeCommand('workbench.action.openSettings', 'lspCopilot.server');
          }
        });
    }
  }

  async stop(): Promise<void> {
    this.controller.invalidate();
    const client = this.languageClient;
    this.languageClient = undefined;
    if (client !== undefined) {
      try {
        await client.dispose(5000);
      } catch (error) {
        this.output.warn(`stopping the server: ${String(error)}`);
      }
    }
  }

  async restart(): Promise<void> {
    this.output.info('restarting the server');
    await this.stop();
    await this.start();
  }

  async toggle(): Promise<void> {
    const enabled = !this.enabled;
    await this.context.globalState.update(ENABLED_KEY, enabled);
    this.statusBar.setClient({ enabled });
    if (!enabled) {
      this.controller.invalidate();
      await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    }
    vscode.window.setStatusBarMessage(`lsp-copilot: suggestions ${enabled ? 'on' : 'off'}`, 2000);
  }

  /** Ask for a fresh suggestion at the cursor, bypassing the stream cache. */
  async trigger(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (editor !== undefined && this.languageClient !== undefined) {
      this.controller.invalidate(this.languageClient.code2ProtocolConverter.asUri(editor.document.uri));
    }
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
  }

  private wants(document: vscode.TextDocument): boolean {
    const disabled = vscode.workspace.getConfiguration(SECTION, document).get<unknown>('disabledLanguages');
    const running = this.languageClient?.isRunning() ?? false;
    return running && this.enabled && isLanguageEnabled(document.languageId, disabled);
  }

  /** The lspCopilot values the user set (for `scopeUri` when given), client-only keys left out. */
  private userSettings(scopeUri?: string): JsonObject {
    const scope = scopeUri === undefined ? undefined : vscode.Uri.parse(scopeUri);
    const config = vscode.workspace.getConfiguration(SECTION, scope);
    return serverSettings(explicitSettings(this.settingKeys, (key) => config.inspect(key)));
  }

  private requireClient(): LanguageClient {
    if (this.languageClient === undefined) {
      throw new Error('the lsp-copilot server is not running');
    }
    return this.languageClient;
  }

  private serverOptions(): ServerOptions {
    const config = vscode.workspace.getConfiguration(SECTION);
    const launch = resolveServerCommand(readLaunchSettings(config), {
      platform: process.platform,
      pathVariable: process.env.PATH ?? '',
      pathExt: process.env.PATHEXT,
      isExecutable,
    });
    this.launch = launch;
    this.output.info(`server: ${[launch.command, ...launch.args].join(' ')} (from ${launch.source})`);
    // on-prem: the server never reaches the Hugging Face hub unless the user's environment says otherwise
    const env = { HF_HUB_OFFLINE: '1', ...process.env };
    return { command: launch.command, args: launch.args, transport: TransportKind.stdio, options: { env } };
  }

  private createClient(): LanguageClient {
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      initializationOptions: () => initializationOptions(this.userSettings()),
      outputChannel: this.output,
      middleware: {
        // our own provider (registered in the constructor) owns textDocument/inlineCompletion: streaming cache and
        // cancellation rules, and it works whether or not the server advertises inlineCompletionProvider
        provideInlineCompletionItems: () => undefined,
        // the popup completion would supersede the inline request of the same document on every keystroke
        provideCompletionItem: () => undefined,
        workspace: {
          configuration: async (params, token, next) => {
            const result: unknown = await next(params, token);
            if (!Array.isArray(result)) {
              return result as ResponseError;
            }
            return result.map((value: unknown, i) => {
              const item = params.items[i];
              return item?.section === SECTION ? this.userSettings(item.scopeUri) : value;
            });
          },
        },
      },
    };
    const client = new LanguageClient('lspCopilot', 'lsp-copilot', this.serverOptions(), clientOptions);
    client.onDidChangeState((event) => {
      if (event.newState === State.Running) {
        this.statusBar.setClient({ running: 'running' });
      } else if (event.newState === State.Stopped) {
        this.controller.invalidate();
        this.statusBar.setClient({ running: 'stopped' });
      }
    });
    client.onNotification(Methods.chunk, (params: unknown) => this.controller.onChunk(params));
    client.onNotification(Methods.status, (params: unknown) => {
      const status = parseStatus(params);
      if (status !== undefined) {
        this.statusBar.setStatus(status);
      }
    });
    return client;
  }

  /** The status request carries device/draft/counters that notifications lack; optional on the server side. */
  private async pullStatus(client: LanguageClient): Promise<void> {
    try {
      const status = parseStatus(await client.sendRequest(Methods.status, {}));
      if (status !== undefined) {
        this.statusBar.setStatus(status);
      }
    } catch (error) {
      this.output.debug(`lspCopilot/status request: ${String(error)}`);
    }
  }

  /**
   * server.* restarts the server; any other lspCopilot change is announced with `settings: null` so the server pulls
   * the tree through the configuration middleware (languageclient's `synchronize.configurationSection` would push
   * the raw tree, client-only keys included, and the server applies a pushed tree as is).
   */
  private onConfigurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (event.affectsConfiguration(`${SECTION}.server`)) {
      void this.restart();
    } else if (event.affectsConfiguration(SECTION) && this.languageClient?.isRunning()) {
      void this.languageClient.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
    }
  }

  dispose(): void {
    void this.stop();
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
  }
}
