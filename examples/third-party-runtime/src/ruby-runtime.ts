import { definePlugin, type RuntimeDefinition } from "@isol8/kit";
import * as z from "zod";

/**
 * A Ruby runtime for isol8: one small plugin file. It imports only @isol8/kit, the plugin contract
 * (and zod for its options); the image recipe installs Ruby from Debian's packages on top of isol8's base image.
 */
const options = z.strictObject({
  /** Extra Debian packages to install beside ruby (e.g. "ruby-json"). */
  extraPackages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, "expected a Debian package name")).default([]),
});

export const rubyRuntime = definePlugin({
  name: "example:runtime-ruby",
  options,
  setup: ({ extraPackages }) => {
    const definition: RuntimeDefinition = {
      name: "ruby",
      extensions: [".rb"],
      command: (file) => ["ruby", file],
      image: {
        version: `1:${extraPackages.join(",")}`,
        dockerfile: `RUN apt-get update && apt-get install -y --no-install-recommends ruby ${extraPackages.join(" ")} && rm -rf /var/lib/apt/lists/*\n`,
      },
    };
    // The kit this apply receives knows the plugin: "ruby" is registered as example:runtime-ruby's.
    return (kit) => kit.runtimes.register("ruby", definition);
  },
});

export default rubyRuntime;
