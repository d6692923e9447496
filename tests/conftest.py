import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# scripts/guestkit is the guest harness shared by tests and scripts.
sys.path.insert(0, str(ROOT / "scripts"))
