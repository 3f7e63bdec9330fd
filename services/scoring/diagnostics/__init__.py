"""Per-tier diagnostics: peer distributions kept incrementally per (tier, figure), and the
core problem an account's percentiles among its peers point to, with its playbook."""

from services.scoring.diagnostics.diagnose import Diagnosis, Finding, diagnose
from services.scoring.diagnostics.distribution import (
    ACCURACY,
    GAMMA,
    PeerDistribution,
    PeerDistributionCorrupt,
    PeerDistributionError,
    PeerValueInvalid,
    PeerValueMissing,
)
from services.scoring.diagnostics.peers import PeerGroup, PeerStanding, PeerUpdate, peer_updates

__all__ = [
    "ACCURACY",
    "GAMMA",
    "Diagnosis",
    "Finding",
    "PeerDistribution",
    "PeerDistributionCorrupt",
    "PeerDistributionError",
    "PeerGroup",
    "PeerStanding",
    "PeerUpdate",
    "PeerValueInvalid",
    "PeerValueMissing",
    "diagnose",
    "peer_updates",
]
