// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMarket} from "../interfaces/IMarket.sol";

/// @title Where each provider's node takes calls.
/// @notice Gateways look a worker's provider up here to find the node's HTTP
/// endpoint, as Akash tenants find a provider by its host URI.
abstract contract ProviderEndpoints is IMarket {
    /// Longest accepted endpoint URL, in bytes.
    uint256 private constant MAX_ENDPOINT_BYTES = 256;

    mapping(address provider => string endpoint) private _endpoints;

    /// @inheritdoc IMarket
    function setProviderEndpoint(string calldata endpoint) external {
        if (!_isRegisteredProvider(msg.sender)) revert MarketProviderNotRegistered(msg.sender);
        uint256 length = bytes(endpoint).length;
        if (length == 0 || length > MAX_ENDPOINT_BYTES) revert MarketInvalidEndpoint(length, MAX_ENDPOINT_BYTES);

        _endpoints[msg.sender] = endpoint;

        emit ProviderEndpointSet(msg.sender, endpoint);
    }

    /// @inheritdoc IMarket
    function providerEndpoint(address provider) external view returns (string memory) {
        return _endpoints[provider];
    }

    /// @dev Whether `account` registered as a provider.
    function _isRegisteredProvider(address account) internal view virtual returns (bool);
}
