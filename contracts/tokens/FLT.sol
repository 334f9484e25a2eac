// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title FLT, the token that providers stake in the Market as collateral.
/// @notice 18 decimals. Only the owner can mint. Supports EIP-2612 permits
/// under an EIP-712 domain named after the token.
contract FLT is ERC20, ERC20Permit, Ownable {
    constructor(address initialOwner)
        ERC20("Fluence Test Token", "FLT")
        ERC20Permit("Fluence Test Token")
        Ownable(initialOwner)
    {}

    /// @notice Mints `amount` FLT wei to `to`.
    /// @dev Only the owner. Emits {IERC20-Transfer} from the zero address.
    /// @param to receiver of the new tokens
    /// @param amount FLT wei to create
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
