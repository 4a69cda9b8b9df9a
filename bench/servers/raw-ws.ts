/**
 * (R) The floor: a raw `ws` broadcast server. A publish is parsed once, turned into one event,
 * serialized once into one Buffer, and that Buffer is written to every socket of the channel.
 *
 * Protocol (JSON text frames):
 *   → {"type":"subscribe","channel":"c"}                     ← {"type":"subscribed","channel":"c"}
 *   → {"type":"publish","id":"1","channel":"c","payload":{…}} ← {"type":"published","id":"1","delivered":n}
 *   ← {"type":"event","event":{"id","action":"MESSAGE","channel","payload","createdAt"}} to each subscriber
 *
 * A socket may subscribe to several channels and publish to any channel, subscribed or not (the
 * rooms workload's clients send over the socket they listen on).
 *
 * PORT from the environment (0 picks one); prints `READY <port>` once listening.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

const channels = new Map<string, Set<WebSocket>>();

const httpServer = createServer((_req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server: httpServer, perMessageDeflate: false });

wss.on("connection", (socket) => {
  const joined = new Set<string>();
  socket.on("message", (data) => {
    let message: { type?: unknown; id?: unknown; channel?: unknown; payload?: unknown };
    try {
      message = JSON.parse(String(data));
    } catch {
      socket.close(4400, "bad JSON");
      return;
    }
    if (typeof message.channel !== "string") {
      socket.close(4400, "channel must be a string");
      return;
    }
    const channel = message.channel;
    if (message.type === "subscribe") {
      let members = channels.get(channel);
      if (!members) channels.set(channel, (members = new Set()));
      members.add(socket);
      joined.add(channel);
      socket.send(JSON.stringify({ type: "subscribed", channel }));
    } else if (message.type === "publish") {
      const event = { id: randomUUID(), action: "MESSAGE", channel, payload: message.payload, createdAt: new Date().toISOString() };
      const frame = Buffer.from(JSON.stringify({ type: "event", event }));
      const members = channels.get(channel);
      if (members) for (const member of members) member.send(frame, { binary: false });
      socket.send(JSON.stringify({ type: "published", id: message.id, delivered: members?.size ?? 0 }));
    } else {
      socket.close(4400, "unknown message type");
    }
  });
  socket.on("close", () => {
    for (const channel of joined) {
      const members = channels.get(channel);
      members?.delete(socket);
      if (members?.size === 0) channels.delete(channel);
    }
  });
});

httpServer.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  console.log(`READY ${(httpServer.address() as AddressInfo).port}`);
});

const stop = () => {
  for (const socket of wss.clients) socket.terminate();
  httpServer.close(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
