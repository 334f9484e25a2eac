// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDealManager} from "../interfaces/IDealManager.sol";

/// @title Epoch billing arithmetic and funded spans of a deal.
/// @notice A funded span `[start, end)` is a run of epochs whose `ratePerEpoch`
/// was moved from the deal's balance to its pending amount. The spans of a deal
/// are sorted, disjoint and never touch, because contiguous spans are merged.
library DealBilling {
    /// @notice Returns how many of `elapsed` epochs a `balance` pays for at `rate` per epoch.
    function fundedEpochs(uint256 balance, uint256 rate, uint64 elapsed) internal pure returns (uint64) {
        if (rate == 0) return 0;
        uint256 affordable = balance / rate;
        return affordable < elapsed ? uint64(affordable) : elapsed;
    }

    /// @notice Returns the balance a running deal keeps: `epochs` epochs at the
    /// price cap for all target workers.
    function reserve(uint256 maxPricePerCuPerEpoch, uint32 cuPerWorker, uint32 targetWorkers, uint64 epochs)
        internal
        pure
        returns (uint256)
    {
        return maxPricePerCuPerEpoch * cuPerWorker * targetWorkers * epochs;
    }

    /// @notice Appends the funded span `[start, end)`, merged into the last span when they touch.
    /// @dev Settlement only moves forward, so `start` is never below the last span's end.
    function recordSpan(IDealManager.FundedSpan[] storage spans, uint64 start, uint64 end) internal {
        uint256 count = spans.length;
        if (count > 0 && spans[count - 1].end == start) {
            spans[count - 1].end = end;
        } else {
            spans.push(IDealManager.FundedSpan({start: start, end: end}));
        }
    }

    /// @notice Counts the funded epochs in `[fromEpoch, toEpoch)` with and without a proof.
    /// @dev Finds the first span that ends after `fromEpoch` by binary search, then
    /// walks the spans in order until one starts at or after `toEpoch`.
    function countClaimEpochs(
        IDealManager.FundedSpan[] storage spans,
        mapping(uint64 epoch => IDealManager.EpochProof) storage proofs,
        uint64 fromEpoch,
        uint64 toEpoch
    ) internal view returns (uint64 proven, uint64 unproven) {
        for (uint256 i = _firstSpanEndingAfter(spans, fromEpoch); i < spans.length; i++) {
            IDealManager.FundedSpan memory span = spans[i];
            if (span.start >= toEpoch) break;

            uint64 first = max64(span.start, fromEpoch);
            uint64 end = min64(span.end, toEpoch);
            for (uint64 epoch = first; epoch < end; epoch++) {
                if (proofs[epoch].submittedAt != 0) {
                    proven++;
                } else {
                    unproven++;
                }
            }
        }
    }

    function min64(uint64 a, uint64 b) internal pure returns (uint64) {
        return a < b ? a : b;
    }

    function max64(uint64 a, uint64 b) internal pure returns (uint64) {
        return a > b ? a : b;
    }

    /// @dev Returns the index of the first span with `end > epoch`, or `spans.length` if none.
    function _firstSpanEndingAfter(IDealManager.FundedSpan[] storage spans, uint64 epoch)
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
