import { AppError, ErrorCode } from "../errors.js";
import type { Context } from "./builder.js";

/**
 * Refuses management operations to callers without the admin token: `UNAUTHENTICATED` when no admin
 * token was presented, `FORBIDDEN` when the caller is a client.
 */
export function requireAdmin(context: Context): void {
  if (context.session.isAdmin) return;
  if (context.session.client.authenticated) {
    throw new AppError(ErrorCode.Forbidden, "This operation needs the admin token");
  }
  throw new AppError(
    ErrorCode.Unauthenticated,
    'This operation needs the admin token: send the header Authorization: Bearer <ADMIN_TOKEN> (in GraphiQL, in the Headers tab: {"Authorization": "Bearer <ADMIN_TOKEN>"}), or on the WebSocket the connection parameter adminToken',
  );
}
