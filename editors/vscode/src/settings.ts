/**
 * VS Code settings → what the server gets. No `vscode` import, so it runs under `node --test`.
 *
 * Only values the user actually set are sent. The server starts from its own defaults,
 * then `CODELLAMA_LS_*` variables and command-line flags (`codellama.server.args`); sending
 * every contributed default would silently override those.
 */

/** Settings prefix in VS Code; the server also accepts it as the section name. */
export const SECTION = 'codellama';
/** Client-side settings (how to start the server), never sent to it. */
export const CLIENT_KEYS = ['server.path', 'server.args'] as const;

/** The layers `WorkspaceConfiguration.inspect()` reports for one key. */
export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

export type Inspect = (key: string) => Inspected | undefined;
export type ServerSettings = Record<string, unknown>;

interface ManifestProperty {
  default?: unknown;
  description?: string;
  markdownDescription?: string;
}

export interface Manifest {
  contributes?: { configuration?: { properties?: Record<string, ManifestProperty> } };
}

/** Server setting names (`maxNewTokens`, ...) contributed by package.json, in order. */
export function serverKeys(manifest: Manifest): string[] {
  const properties = manifest.contributes?.configuration?.properties ?? {};
  return Object.keys(properties)
    .filter((name) => name.startsWith(SECTION + '.'))
    .map((name) => name.slice(SECTION.length + 1))
    .filter((key) => !(CLIENT_KEYS as readonly string[]).includes(key));
}

/** Contributed defaults by server key, used to undo a setting the user removed. */
export function manifestDefaults(manifest: Manifest): ServerSettings {
  const properties = manifest.contributes?.configuration?.properties ?? {};
  const out: ServerSettings = {};
  for (const key of serverKeys(manifest)) {
    out[key] = properties[`${SECTION}.${key}`]?.default ?? null;
  }
  return out;
}

/** The value the user set (the most specific scope wins), or undefined when only the default applies. */
export function userValue(inspected: Inspected | undefined): unknown {
  if (!inspected) {
    return undefined;
  }
  for (const value of [inspected.workspaceFolderValue, inspected.workspaceValue, inspected.globalValue]) {
    if (value !== undefined) {
      return value;
    }
  }
  return undefined;
}

/** `initializationOptions`: the user-set server settings, flat camelCase keys. */
export function userSettings(keys: readonly string[], inspect: Inspect): ServerSettings {
  const out: ServerSettings = {};
  for (const key of keys) {
    const value = userValue(inspect(key));
    if (value !== undefined) {
      out[key] = value;
    }
  }
  return out;
}

/**
 * What to send in `workspace/didChangeConfiguration` after the user edited settings.
 *
 * Changed and new values are sent as they are. A value the user removed is sent as the
 * contributed default (the server's built-in default), because the server applies partial
 * updates and would otherwise keep the removed value. Returns undefined when nothing changed.
 */
export function configurationChange(
  previous: ServerSettings,
  current: ServerSettings,
  defaults: ServerSettings,
): ServerSettings | undefined {
  const changes: ServerSettings = {};
  for (const [key, value] of Object.entries(current)) {
    if (!sameValue(previous[key], value)) {
      changes[key] = value;
    }
  }
  for (const key of Object.keys(previous)) {
    if (!(key in current) && key in defaults && !sameValue(previous[key], defaults[key])) {
      changes[key] = defaults[key];
    }
  }
  return Object.keys(changes).length > 0 ? changes : undefined;
}

/** The notification payload; nested under the section name, which the server understands. */
export function didChangeConfigurationParams(changes: ServerSettings): { settings: Record<string, ServerSettings> } {
  return { settings: { [SECTION]: changes } };
}

export interface ServerCommand {
  command: string;
  args: string[];
}

/** How to start the server from `codellama.server.path` / `codellama.server.args`. */
export function serverCommand(path: unknown, args: unknown): ServerCommand {
  const command = typeof path === 'string' && path.trim() !== '' ? path.trim() : 'codellama-ls';
  const list = Array.isArray(args) ? args.filter((a): a is string => typeof a === 'string') : [];
  return { command, args: list };
}

/**
 * Where `command` resolves: itself when it names a path (holds a separator), else the first
 * `PATH` entry holding it (with a `PATHEXT` extension on Windows). Undefined when nowhere:
 * the extension then says so once, instead of the language client's error plus its own.
 */
export function findExecutable(
  command: string,
  env: { PATH?: string; PATHEXT?: string },
  isExecutable: (path: string) => boolean,
  platform: string = process.platform,
): string | undefined {
  const windows = platform === 'win32';
  const sep = windows ? ';' : ':';
  const extensions = windows ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)] : [''];
  const slash = windows ? '\\' : '/';
  const join = (dir: string, name: string) => (dir.endsWith('/') || dir.endsWith('\\') ? dir + name : dir + slash + name);
  const candidates = /[\\/]/.test(command)
    ? [command]
    : (env.PATH ?? '').split(sep).filter(Boolean).map((dir) => join(dir, command));
  for (const base of candidates) {
    for (const ext of extensions) {
      if (isExecutable(base + ext)) {
        return base + ext;
      }
    }
  }
  return undefined;
}

/** What to tell the user when the server command is not found (where each kind of window reads it). */
export function notFoundHint(command: string): string {
  return (
    `'${command}' was not found; install codellama-ls or set codellama.server.path ` +
    '(User settings; in a remote window such as Remote-SSH, WSL, Codespaces or code-server, ' +
    "the path on the remote machine: the Remote settings override the User settings there)."
  );
}

/** True when a settings change means the server process must be restarted. */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return CLIENT_KEYS.some((key) => affects(`${SECTION}.${key}`));
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
