import { Isol8Error, UnknownNameError } from "./errors.js";

/**
 * Things chosen by name (runtimes, pool strategies, network modes, seccomp modes, audit
 * sinks). A duplicate registration is an error naming both plugins; a lookup miss is an
 * error naming what is registered and the plugin to add.
 */
export class NamedRegistry<T> {
  readonly #entries = new Map<string, { value: T; plugin: string }>();
  #sealed = false;

  constructor(
    /** What the registry holds, for messages: "runtime", "pool strategy", ... */
    readonly kind: string,
    /** Builds the hint for a miss, e.g. the plugin package to add. */
    private readonly missHint: (name: string) => string,
    /** Builds the error for a miss (runtimes have their own error class). */
    private readonly missError?: (name: string, registered: string[]) => Error,
  ) {}

  /** The registry as one plugin sees it: its registrations are owned by `plugin` unless they name another. */
  scoped(plugin: string): NamedRegistry<T> {
    return new Proxy(this, {
      get: (target, property) => {
        if (property === "register") return (name: string, value: T, owner: string = plugin) => target.register(name, value, owner);
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  register(name: string, value: T, plugin = "(user)"): void {
    if (this.#sealed) {
      throw new Isol8Error(
        "ISOL8_ERR_PLUGIN",
        `Cannot register ${this.kind} "${name}" from ${plugin}: plugins are applied only while the engine is assembled.`,
        { plugin },
      );
    }
    const existing = this.#entries.get(name);
    if (existing) {
      throw new Isol8Error(
        "ISOL8_ERR_DUPLICATE_NAME",
        `${this.kind} "${name}" is registered twice: by ${existing.plugin} and by ${plugin}. Remove one of the plugins.`,
        { plugin },
      );
    }
    this.#entries.set(name, { value, plugin });
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  get(name: string): T {
    const entry = this.#entries.get(name);
    if (!entry) {
      const registered = this.names();
      throw this.missError?.(name, registered) ?? new UnknownNameError(this.kind, name, registered, this.missHint(name));
    }
    return entry.value;
  }

  /** The plugin that registered `name`. */
  owner(name: string): string | undefined {
    return this.#entries.get(name)?.plugin;
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  values(): T[] {
    return [...this.#entries.values()].map((e) => e.value);
  }

  seal(): void {
    this.#sealed = true;
  }
}
