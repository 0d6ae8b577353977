import { describe } from "vitest";
import { sweep } from "./sweep.ts";

describe("simulator sweep, 7 validators", () => {
  sweep(7, 0, 80);
  sweep(7, 2, 80);
});
