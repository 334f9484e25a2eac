"""The README's Python snippet runs as written against a fresh chain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from local_chain import LocalChain, local_chain

from cloudless.chain.types import DealStatus
from cloudless.chain.deployment import deployment_path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet() -> str:
    text = README.read_text()
    match = re.search(r"<!-- snippet: create-deal -->\s*```python\n(.*?)```\s*<!-- /snippet -->", text, re.DOTALL)
    assert match, "README.md has no create-deal snippet between its markers"
    return match.group(1)


@pytest.fixture()
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalChain:
    with local_chain() as started:
        # The snippet calls connect() without a deployment, so it reads
        # deployments/<chain-id>.json: point that lookup at a temporary folder.
        monkeypatch.setenv("CLOUDLESS_ROOT", str(tmp_path))
        started.deployment.save(deployment_path(started.deployment.chain_id, directory=tmp_path / "deployments"))
        (tmp_path / ".build").symlink_to(Path(__file__).resolve().parents[2] / ".build")
        admin = started.session(0)
        admin.fund(started.session(5).address, usdc=admin.usdc.parse("100"))
        yield started


def test_readme_snippet_creates_deal(chain: LocalChain, capsys: pytest.CaptureFixture[str]) -> None:
    code = readme_snippet().replace("http://127.0.0.1:8545", chain.rpc_url)
    exec(compile(code, "README.md", "exec"), {})

    printed = capsys.readouterr().out.split()
    assert printed == ["1", DealStatus.NOT_ENOUGH_WORKERS.name]
    deal = chain.session(5).deals.get_deal(1)
    assert deal.target_workers == 2
    assert deal.balance == 10 * 10**6
    assert deal.owner == chain.session(5).address
