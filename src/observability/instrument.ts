import type { TriggerRunRecorder } from "../triggers/run/recorder.js";
import type { WebhookClient } from "../triggers/webhook/client.js";
import type { Metrics } from "./metrics.js";

/** A webhook client that counts each call by status (or error) before handing back its outcome. */
export function countWebhookCalls(client: WebhookClient, metrics: Pick<Metrics, "webhookCall">): WebhookClient {
  return {
    send: (request) =>
      client.send(request).then(
        (response) => {
          metrics.webhookCall(response.status);
          return response;
        },
        (error: unknown) => {
          metrics.webhookCall("error");
          throw error;
        },
      ),
  };
}

/** What the trigger middleware records runs with: the recorder, counting each run by outcome and duration. */
export function countTriggerRuns(recorder: TriggerRunRecorder, metrics: Metrics): Pick<TriggerRunRecorder, "record"> {
  return {
    record: (run) => {
      metrics.triggerRun(run.outcome, run.durationMs);
      recorder.record(run);
    },
  };
}
