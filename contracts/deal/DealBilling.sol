// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDealManager} from "../interfaces/IDealManager.sol";

/// @title Epoch billing arithmetic and unfunded spans of a deal.
/// @notice An unfunded span `[start, end)` is a run of settled epochs whose
/// rate the deal's balance could not pay while workers were billed. The spans
/// of a deal are sorted, disjoint and never touch, because contiguous spans are
/// merged. A deal that never runs dry has none, so the usual case costs no storage.
library DealBilling {
    /// @notice What a claim of `[fromEpoch, toEpoch)` finds in the worker's epochs.
    struct ClaimTally {
        uint64 funded; // funded epochs in the range
        uint64 proven; // funded epochs with a proof
        uint256 usageEarned; // USAGE deals: capped fuel of the proven epochs at the usage price
    }

    /// @notice Fuel cap and price of a USAGE deal; both 0 for a SUBSCRIPTION deal.
    struct UsageTerms {
        uint64 maxUsagePerWorkerEpoch;
        uint256 pricePerMegafuel;
    }

    /// @notice Returns how many of `elapsed` epochs a `balance` pays for at `rate` per epoch.
    function fundedEpochs(uint256 balance, uint256 rate, uint64 elapsed) internal pure returns (uint64) {
        if (rate == 0) return 0;
        uint256 affordable = balance / rate;
        return affordable < elapsed ? uint64(affordable) : elapsed;
    }

    /// @notice Returns the payment-token base units that `fuel` costs at
    /// `pricePerMegafuel` base units per 10**6 fuel, rounded down.
    function usageCharge(uint64 fuel, uint256 pricePerMegafuel) internal pure returns (uint256) {
        return uint256(fuel) * pricePerMegafuel / 1_000_000;
    }

    /// @notice Appends the span `[start, end)`, merged into the last span when they touch.
    /// @dev Settlement only moves forward, so `start` is never below the last span's end.
    function recordSpan(IDealManager.EpochSpan[] storage spans, uint64 start, uint64 end) internal {
        uint256 count = spans.length;
        if (count > 0 && spans[count - 1].end == start) {
            spans[count - 1].end = end;
        } else {
            spans.push(IDealManager.EpochSpan({start: start, end: end}));
        }
    }

    /// @notice Walks the settled epochs `[fromEpoch, toEpoch)`, skips the unfunded
    /// spans, and counts the funded and the proven epochs.
    /// @dev Finds the first unfunded span that ends after `fromEpoch` by binary
    /// search. The cost is linear in the epochs of the range: one bit test each,
    /// plus one usage read per proven epoch of a USAGE deal.
    function tallyClaim(
        IDealManager.EpochSpan[] storage unfunded,
        mapping(uint256 word => uint256 bits) storage provenBits,
        mapping(uint256 slot => uint256 packed) storage usageSlots,
        UsageTerms memory usage,
        uint64 fromEpoch,
        uint64 toEpoch
    ) internal view returns (ClaimTally memory tally) {
        uint256 next = _firstSpanEndingAfter(unfunded, fromEpoch);
        uint256 count = unfunded.length;
        uint64 epoch = fromEpoch;
        while (epoch < toEpoch) {
            if (next < count && epoch >= unfunded[next].start) {
                epoch = unfunded[next].end;
                next++;
                continue;
            }
            tally.funded++;
            if ((provenBits[epoch >> 8] >> (epoch & 255)) & 1 == 1) {
                tally.proven++;
                if (usage.pricePerMegafuel > 0) {
                    uint64 used = uint64(usageSlots[epoch >> 2] >> ((epoch & 3) * 64));
                    tally.usageEarned += usageCharge(min64(used, usage.maxUsagePerWorkerEpoch), usage.pricePerMegafuel);
                }
            }
            epoch++;
        }
    }

    /// @notice Returns whether `epoch` lies in one of the spans.
    function inSpans(IDealManager.EpochSpan[] storage spans, uint64 epoch) internal view returns (bool) {
        uint256 index = _firstSpanEndingAfter(spans, epoch);
        return index < spans.length && spans[index].start <= epoch;
    }

    function min64(uint64 a, uint64 b) internal pure returns (uint64) {
        return a < b ? a : b;
    }

    function max64(uint64 a, uint64 b) internal pure returns (uint64) {
        return a > b ? a : b;
    }

    /// @dev Returns the index of the first span with `end > epoch`, or `spans.length` if none.
    function _firstSpanEndingAfter(IDealManager.EpochSpan[] storage spans, uint64 epoch)
        private
        view
        returns (uint256 low)
    {
        uint256 high = spans.length;
        while (low < high) {
            uint256 middle = (low + high) / 2;
            if (spans[middle].end > epoch) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
    }
}
