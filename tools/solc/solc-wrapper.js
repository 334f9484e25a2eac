#!/usr/bin/env node
// Command-line stand-in for a native solc binary, built on the npm `solc`
// package (a WebAssembly build). It implements only the calls that
// ape-solidity and slither make:
//   solc --version
//   solc --standard-json [--base-path DIR] [--allow-paths DIR[,DIR...]]
// Imports are resolved against the base path and the allowed paths, and the
// standard-JSON input is read from standard input.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

function parseArgs(argv) {
  const options = { version: false, standardJson: false, basePath: null, allowPaths: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === "--version") {
      options.version = true;
    } else if (arg === "--standard-json") {
      options.standardJson = true;
    } else if (arg === "--base-path") {
      options.basePath = argv[++i];
    } else if (arg === "--allow-paths") {
      options.allowPaths.push(...argv[++i].split(","));
    } else if (arg.startsWith("--base-path=")) {
      options.basePath = arg.slice("--base-path=".length);
    } else if (arg.startsWith("--allow-paths=")) {
      options.allowPaths.push(...arg.slice("--allow-paths=".length).split(","));
    } else {
      process.stderr.write(`solc-wrapper: unsupported argument '${arg}'; only --version and --standard-json are implemented\n`);
      process.exit(2);
    }
  }
  return options;
}

function makeImportCallback(roots) {
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      if (fs.existsSync(candidate)) {
        return { contents: fs.readFileSync(candidate, "utf8") };
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

function main() {
  const options = parseArgs(process.argv.slice(2));

  if (options.version) {
    // ape-solidity and solcx parse "<version>+commit.<hash>" from this line.
    const version = solc.version().replace(".Emscripten.clang", ".Linux.g++");
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${version}\n`);
    return;
  }
  if (!options.standardJson) {
    process.stderr.write("solc-wrapper: pass --version or --standard-json\n");
    process.exit(2);
  }

  const input = fs.readFileSync(0, "utf8");
  const roots = [options.basePath || process.cwd(), ...options.allowPaths, process.cwd()];
  const output = solc.compile(input, { import: makeImportCallback(roots) });
  process.stdout.write(output);
}

main();
