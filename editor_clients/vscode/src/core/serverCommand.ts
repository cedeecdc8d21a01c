/** How to start the server: explicit command, Python interpreter, `lsp-copilot` on PATH, or `python3 -m`. */

import * as path from 'node:path';

/** Client-only settings under `lspCopilot.server` (never sent to the server). */
export interface ServerLaunchSettings {
  /** Full command line, e.g. ["/opt/venv/bin/lsp-copilot", "serve"]; empty = resolve automatically. */
  command: string[];
  /** Python interpreter that has lsp_copilot installed; runs `<pythonPath> -m lsp_copilot serve`. */
  pythonPath: string;
  /** Appended to the resolved command line, e.g. ["--log-file", "/tmp/lsp-copilot.log"]. */
  extraArgs: string[];
}

export const DEFAULT_LAUNCH: ServerLaunchSettings = { command: [], pythonPath: '', extraArgs: [] };

export interface LaunchCommand {
  command: string;
  args: string[];
  /** Which rule chose it, for the log. */
  source: 'server.command' | 'server.pythonPath' | 'PATH' | 'python';
}

/** The environment a lookup needs, injected so resolution is testable. */
export interface LaunchEnvironment {
  platform: NodeJS.Platform;
  pathVariable: string;
  /** Windows PATHEXT (";"-separated); ignored elsewhere. */
  pathExt?: string;
  isExecutable(file: string): boolean;
}

/** First executable named `name` on the PATH, or undefined. */
export function findOnPath(name: string, env: LaunchEnvironment): string | undefined {
  const delimiter = env.platform === 'win32' ? ';' : ':';
  const join = (dir: string, file: string): string => (env.platform === 'win32' ? path.win32.join(dir, file) : path.posix.join(dir, file));
  const exts = env.platform === 'win32' ? ['', ...(env.pathExt ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const dir of env.pathVariable.split(delimiter)) {
    if (dir === '') {
      continue;
    }
    for (const ext of exts) {
      const candidate = join(dir, name + ext.toLowerCase());
      if (env.isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** Resolve the server's command line; rules in order: server.command, server.pythonPath, PATH, python3. */
export function resolveServerCommand(settings: ServerLaunchSettings, env: LaunchEnvironment): LaunchCommand {
  const command = settings.command.filter((part) => part.trim() !== '');
  let launch: LaunchCommand;
  if (command.length > 0) {
    launch = { command: command[0], args: command.slice(1), source: 'server.command' };
  } else if (settings.pythonPath.trim() !== '') {
    launch = { command: settings.pythonPath.trim(), args: ['-m', 'lsp_copilot', 'serve'], source: 'server.pythonPath' };
  } else {
    const onPath = findOnPath('lsp-copilot', env);
    launch = onPath !== undefined
      ? { command: onPath, args: ['serve'], source: 'PATH' }
      : { command: env.platform === 'win32' ? 'python' : 'python3', args: ['-m', 'lsp_copilot', 'serve'], source: 'python' };
  }
  return { ...launch, args: [...launch.args, ...settings.extraArgs] };
}
