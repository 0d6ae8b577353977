import { describe } from "vitest";
import { sweep } from "./sweep.ts";

describe("simulator sweep, 10 validators", () => {
  sweep(10, 0, 60);
  sweep(10, 3, 60);
});
