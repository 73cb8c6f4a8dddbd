/** One line of progress from `isol8 setup`: what the CLI prints while images build. */
export interface BuildProgressEvent {
  /** The runtime whose image is being prepared, or "base" for the shared base image. */
  target: string;
  /**
   * "status": a phase starts or ends (pulling, debootstrap, up to date, built);
   * "step": a Dockerfile step begins ("Step 2/4 : RUN ..."), the lines worth showing by default;
   * "log": any other output line (apt, debootstrap, npm), for verbose output or error reports.
   */
  kind: "status" | "step" | "log";
  message: string;
}

export type ProgressListener = (event: BuildProgressEvent) => void;
