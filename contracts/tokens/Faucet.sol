// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Test token faucet: a fixed amount of FLT and test USDC per request.
/// @notice Anyone may request a drip for any recipient, because a new address
/// has no ETH to pay gas for its own request. The cool-down is per recipient:
/// after a drip, the next one for that address is allowed `cooldown` seconds
/// later. The faucet pays from its own balances, which the owner tops up by a
/// plain ERC-20 transfer or by minting to this contract.
/// @dev A cool-down change applies at once to every recipient, because the
/// contract stores the time of the last drip, not the time of the next one.
contract Faucet is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice FLT token that the faucet pays out (18 decimals).
    IERC20 public immutable flt;
    /// @notice Test USDC token that the faucet pays out (6 decimals).
    IERC20 public immutable usdc;
    /// @notice FLT wei paid per drip.
    uint256 public fltAmount;
    /// @notice USDC base units (10**-6 USDC) paid per drip.
    uint256 public usdcAmount;
    /// @notice Seconds between two drips to the same recipient.
    uint64 public cooldown;
    /// @notice Unix time of the last drip to each recipient, 0 if it never got one.
    mapping(address recipient => uint64 timestamp) public lastDripAt;

    /// @notice A drip of `fltAmount` FLT wei and `usdcAmount` USDC base units went to `recipient`.
    /// @param caller account that sent the request and paid its gas
    /// @param nextDripAt unix time from which `recipient` may get the next drip
    event Dripped(
        address indexed recipient, address indexed caller, uint256 fltAmount, uint256 usdcAmount, uint256 nextDripAt
    );
    /// @notice The owner set the amounts paid per drip.
    event DripAmountsSet(uint256 fltAmount, uint256 usdcAmount);
    /// @notice The owner set the cool-down in seconds.
    event CooldownSet(uint64 cooldown);
    /// @notice The owner withdrew `amount` base units of `token` to `to`.
    event Withdrawn(address indexed token, address indexed to, uint256 amount);

    /// @notice `recipient` got a drip less than `cooldown` seconds ago; retry at unix time `nextDripAt`.
    error FaucetCooldownActive(address recipient, uint256 nextDripAt);
    /// @notice The faucet holds `balance` of `token`, less than the `amount` that one drip pays.
    error FaucetEmpty(address token, uint256 balance, uint256 amount);
    /// @notice The address named by `what` is the zero address.
    error FaucetZeroAddress(string what);
    /// @notice Both drip amounts are zero, so a drip would pay nothing.
    error FaucetNoDripAmount();

    /// @param flt_ FLT token to pay out
    /// @param usdc_ test USDC token to pay out
    /// @param fltAmount_ FLT wei per drip
    /// @param usdcAmount_ USDC base units per drip
    /// @param cooldown_ seconds between two drips to the same recipient
    /// @param initialOwner account that may change the settings and withdraw
    constructor(
        IERC20 flt_,
        IERC20 usdc_,
        uint256 fltAmount_,
        uint256 usdcAmount_,
        uint64 cooldown_,
        address initialOwner
    ) Ownable(initialOwner) {
        if (address(flt_) == address(0)) revert FaucetZeroAddress("flt");
        if (address(usdc_) == address(0)) revert FaucetZeroAddress("usdc");

        flt = flt_;
        usdc = usdc_;
        _setDripAmounts(fltAmount_, usdcAmount_);
        _setCooldown(cooldown_);
    }

    /// @notice Sends one drip of FLT and test USDC to `recipient`.
    /// @dev Open to every caller: the per-recipient cool-down is the only limit.
    /// A zero drip amount skips that token. Reverts with {FaucetCooldownActive}
    /// inside the cool-down and with {FaucetEmpty} when a balance is too low.
    /// @param recipient address that receives the tokens
    /// @return nextAllowedAt unix time from which `recipient` may get the next drip
    function drip(address recipient) external nonReentrant returns (uint256 nextAllowedAt) {
        if (recipient == address(0)) revert FaucetZeroAddress("recipient");
        uint256 last = lastDripAt[recipient];
        // The sum is uint256 so that no cool-down up to 2**64 - 1 s overflows.
        if (last != 0 && block.timestamp < last + cooldown) {
            revert FaucetCooldownActive(recipient, last + cooldown);
        }
        uint256 fltPaid = fltAmount;
        uint256 usdcPaid = usdcAmount;
        _requireBalance(flt, fltPaid);
        _requireBalance(usdc, usdcPaid);

        lastDripAt[recipient] = uint64(block.timestamp);
        nextAllowedAt = block.timestamp + cooldown;

        emit Dripped(recipient, msg.sender, fltPaid, usdcPaid, nextAllowedAt);

        if (fltPaid != 0) flt.safeTransfer(recipient, fltPaid);
        if (usdcPaid != 0) usdc.safeTransfer(recipient, usdcPaid);
    }

    /// @notice Returns the unix time from which `recipient` may get a drip.
    /// @dev 0 for an address that never got one. A time in the past means now.
    /// @param recipient address to look up
    function nextDripAt(address recipient) external view returns (uint256) {
        uint256 last = lastDripAt[recipient];
        return last == 0 ? 0 : last + cooldown;
    }

    /// @notice Sets the amounts paid per drip. Only the owner.
    /// @dev One of them may be 0, which stops the payout of that token. Reverts
    /// with {FaucetNoDripAmount} if both are 0.
    /// @param fltAmount_ FLT wei per drip
    /// @param usdcAmount_ USDC base units per drip
    function setDripAmounts(uint256 fltAmount_, uint256 usdcAmount_) external onlyOwner {
        _setDripAmounts(fltAmount_, usdcAmount_);
    }

    /// @notice Sets the seconds between two drips to the same recipient. Only the owner.
    /// @dev 0 turns the cool-down off. The new value applies at once, also to
    /// recipients inside their cool-down.
    /// @param cooldown_ seconds between two drips to one recipient
    function setCooldown(uint64 cooldown_) external onlyOwner {
        _setCooldown(cooldown_);
    }

    /// @notice Sends `amount` base units of `token` from the faucet to `to`. Only the owner.
    /// @dev Works for any ERC-20, so tokens sent here by mistake can be recovered.
    /// @param token ERC-20 to withdraw
    /// @param to receiver of the tokens
    /// @param amount base units of `token` to send
    function withdraw(IERC20 token, address to, uint256 amount) external onlyOwner nonReentrant {
        if (to == address(0)) revert FaucetZeroAddress("to");

        emit Withdrawn(address(token), to, amount);

        token.safeTransfer(to, amount);
    }

    function _setDripAmounts(uint256 fltAmount_, uint256 usdcAmount_) private {
        if (fltAmount_ == 0 && usdcAmount_ == 0) revert FaucetNoDripAmount();

        fltAmount = fltAmount_;
        usdcAmount = usdcAmount_;

        emit DripAmountsSet(fltAmount_, usdcAmount_);
    }

    function _setCooldown(uint64 cooldown_) private {
        cooldown = cooldown_;

        emit CooldownSet(cooldown_);
    }

    function _requireBalance(IERC20 token, uint256 amount) private view {
        uint256 balance = token.balanceOf(address(this));
        if (balance < amount) revert FaucetEmpty(address(token), balance, amount);
    }
}
