// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ExecutionReceipts} from "../receipts/ExecutionReceipts.sol";

/// @title Test-only deployment of {ExecutionReceipts}, so receipt hashing can be
/// tested without a Market or DealManager.
contract ReceiptsHarness is ExecutionReceipts {}
