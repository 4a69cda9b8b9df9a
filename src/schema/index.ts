import { builder } from "./builder.js";
import "./channels.js";
import "./server-info.js";
import "./triggers.js";
import "./trigger-authoring.js";
import "./trigger-state.js";
import "./channel-config.js";
import "./config-files.js";
import "./live-view.js";

/** The executable GraphQL schema. */
export const schema = builder.toSchema({ sortSchema: true });
