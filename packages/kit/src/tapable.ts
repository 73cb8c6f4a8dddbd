// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- the declaration of tapable's per-class modules must reach every program that compiles this source (workspace packages compile it through the @isol8/source condition)
/// <reference path="./tapable-lib.d.ts" />
/**
 * The six tapable hook classes the kit uses, each from its own module. tapable is CommonJS, so a
 * bundler cannot drop the classes its index loads and nobody uses (HookMap, MultiHook, the bail
 * and loop variants): importing them one by one keeps a trimmed build ~19 KB smaller. The types
 * are tapable's own.
 */
import type * as Tapable from "tapable";
import AsyncParallelHookClass from "tapable/lib/AsyncParallelHook.js";
import AsyncSeriesBailHookClass from "tapable/lib/AsyncSeriesBailHook.js";
import AsyncSeriesHookClass from "tapable/lib/AsyncSeriesHook.js";
import AsyncSeriesWaterfallHookClass from "tapable/lib/AsyncSeriesWaterfallHook.js";
import SyncHookClass from "tapable/lib/SyncHook.js";
import SyncWaterfallHookClass from "tapable/lib/SyncWaterfallHook.js";

export const AsyncParallelHook = AsyncParallelHookClass as typeof Tapable.AsyncParallelHook;
export const AsyncSeriesBailHook = AsyncSeriesBailHookClass as typeof Tapable.AsyncSeriesBailHook;
export const AsyncSeriesHook = AsyncSeriesHookClass as typeof Tapable.AsyncSeriesHook;
export const AsyncSeriesWaterfallHook = AsyncSeriesWaterfallHookClass as typeof Tapable.AsyncSeriesWaterfallHook;
export const SyncHook = SyncHookClass as typeof Tapable.SyncHook;
export const SyncWaterfallHook = SyncWaterfallHookClass as typeof Tapable.SyncWaterfallHook;
export type Hook<T, R> = Tapable.Hook<T, R>;
