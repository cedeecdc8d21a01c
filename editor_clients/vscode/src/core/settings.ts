/** The `lspCopilot` settings tree as the server sees it: client-only keys stripped, language filter. */

/** Keys under `lspCopilot` that configure the client only; the server would warn about them as unknown. */
export const CLIENT_ONLY_KEYS: readonly string[] = ['server'];

export type JsonObject = { [key: string]: unknown };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A deep copy of the settings tree without client-only keys; non-objects become {}. */
export function serverSettings(tree: unknown): JsonObject {
  if (!isObject(tree)) {
    return {};
  }
  const copy = JSON.parse(JSON.stringify(tree)) as JsonObject;
  for (const key of CLIENT_ONLY_KEYS) {
    delete copy[key];
  }
  return copy;
}

/** initializationOptions: the server's settings plus the streaming opt-in of docs/protocol.md. */
export function initializationOptions(tree: unknown): JsonObject {
  return { ...serverSettings(tree), streaming: true };
}

/** Whether suggestions are wanted for `languageId` (the server checks too; this saves a round trip). */
export function isLanguageEnabled(languageId: string, disabledLanguages: unknown): boolean {
  if (!Array.isArray(disabledLanguages)) {
    return true;
  }
  return !disabledLanguages.some((lang) => lang === languageId);
}

/** What VS Code knows about one setting (the subset of `WorkspaceConfiguration.inspect` used here). */
export interface InspectedValue {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The tree of values the user actually set (folder over workspace over user), nested by the dots of `keys`
 * (relative to `lspCopilot`). Defaults are left out so the server, which owns them, applies its own.
 */
export function explicitSettings(keys: readonly string[], inspect: (key: string) => InspectedValue | undefined): JsonObject {
  const tree: JsonObject = {};
  for (const key of keys) {
    const seen = inspect(key);
    const value = seen?.workspaceFolderValue ?? seen?.workspaceValue ?? seen?.globalValue;
    if (value === undefined) {
      continue;
    }
    const parts = key.split('.');
    let node = tree;
    for (const part of parts.slice(0, -1)) {
      const child = node[part];
      node = (isObject(child) ? child : (node[part] = {}));
    }
    node[parts[parts.length - 1]] = value;
  }
  return tree;
}

/** The setting keys (relative to lspCopilot, server.* excluded) that a package.json contributes. */
export function contributedKeys(packageJson: unknown): string[] {
  const contributes = isObject(packageJson) ? packageJson.contributes : undefined;
  const configuration = isObject(contributes) ? contributes.configuration : undefined;
  const properties = isObject(configuration) ? configuration.properties : undefined;
  return Object.keys(isObject(properties) ? properties : {})
    .filter((key) => key.startsWith('lspCopilot.'))
    .map((key) => key.slice('lspCopilot.'.length))
    .filter((key) => !CLIENT_ONLY_KEYS.some((client) => key === client || key.startsWith(`${client}.`)));
}
