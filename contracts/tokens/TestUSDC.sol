// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Test USD Coin, a 6-decimal stand-in for USDC on local and test chains.
/// @notice Only the owner can mint. Supports EIP-2612 permits under the EIP-712
/// domain name "Test USD Coin".
contract TestUSDC is ERC20, ERC20Permit, Ownable {
    constructor(address initialOwner)
        ERC20("Test USD Coin", "USDC")
        ERC20Permit("Test USD Coin")
        Ownable(initialOwner)
    {}

    /// @notice Token base units per whole coin: 10**6, as for USDC.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` base units (10**-6 USDC) to `to`.
    /// @dev Only the owner. Emits {IERC20-Transfer} from the zero address.
    /// @param to receiver of the new tokens
    /// @param amount base units to create
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
