// tapable ships types for its index only; its per-class modules (tapable.ts imports them) export the class as module.exports.
declare module "tapable/lib/*.js" {
  const HookClass: unknown;
  export default HookClass;
}
