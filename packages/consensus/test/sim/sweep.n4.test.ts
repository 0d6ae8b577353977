import { describe } from "vitest";
import { sweep } from "./sweep.ts";

describe("simulator sweep, 4 validators", () => {
  sweep(4, 0, 120);
  sweep(4, 1, 120);
});
