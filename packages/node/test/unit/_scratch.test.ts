import { it } from "vitest";
import { start, tempNetwork } from "../fixtures/network.ts";

it("timing", async () => {
  let t = Date.now();
  const net = await tempNetwork();
  console.log("init", Date.now() - t);
  t = Date.now();
  const node = await start(net.config);
  console.log("start", Date.now() - t);
  t = Date.now();
  while (node.chain.head.height < 5) await new Promise((r) => setTimeout(r, 20));
  console.log("5 blocks", Date.now() - t);
  t = Date.now();
  await node.stop();
  console.log("stop", Date.now() - t);
});
