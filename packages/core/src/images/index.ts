export { buildImages, type BuildImagesOptions, type BuildReport } from "./build-images.js";
export { ensureBaseImage, type BaseImageReport, type EnsureBaseImageOptions } from "./base-image.js";
export { npmCacheDir, npmPackageFile, type NpmPackageFileOptions } from "./npm-package.js";
export type { BuildProgressEvent, ProgressListener } from "./progress.js";
export * from "./tags.js";
export {
  buildDerivedImage,
  derivedImageTag,
  derivedRecipeHash,
  resolveImage,
  type BuildDerivedImageRequest,
  type DerivedImageReport,
} from "./derived-image.js";
export { ImagePushError, pushImage, pushRepository, RegistryLoginError, verifyRegistryLogin, type PushedImage, type PushImageRequest } from "./push.js";
export { dockerConfigPath, parseRegistry, resolveRegistryAuth, type RegistryAuthConfig, type RegistryTarget } from "./registry-auth.js";
