/**
 * The Common that transactions are decoded with, so that decoding does not rebuild the chain
 * parameters for every transaction.
 *
 * Every @ethereumjs/tx constructor copies the Common it is given and merges the transaction
 * parameters into the copy (`updateParams(paramsTx)`: a JSON deep copy of each EIP's parameters
 * and a rebuild of the whole parameter cache). That was ~7% of the node's CPU under load. The
 * Common returned here already holds `paramsTx`; the copies the constructors make inherit its
 * `updateParams`, which skips `paramsTx` (merging it again would rebuild the same values) and
 * merges any other parameter set as usual. Each transaction still gets its own copy.
 */
import { Common, type ParamsDict } from "@ethereumjs/common";
import { paramsTx } from "@ethereumjs/tx";

/** The protected field the override touches (`copy()` shares it between a Common and its copies). */
type WithParams = { _params: ParamsDict };

const txCommons = new WeakMap<Common, Common>();

function mergeParams(this: Common, params: ParamsDict): void {
  if (params === paramsTx) return;
  // Copies share the parameter dictionary: give this one its own before changing it.
  const self = this as unknown as WithParams;
  self._params = { ...self._params };
  Common.prototype.updateParams.call(this, params);
}

/** The transaction-decoding Common for `common` (one per Common; chain rules and crypto are its). */
export function txCommon(common: Common): Common {
  let shared = txCommons.get(common);
  if (shared === undefined) {
    shared = common.copy();
    const self = shared as unknown as WithParams;
    self._params = { ...self._params };
    shared.updateParams(paramsTx);
    // An own property: `copy()` (Object.assign) hands it to every copy.
    shared.updateParams = mergeParams;
    txCommons.set(common, shared);
  }
  return shared;
}
