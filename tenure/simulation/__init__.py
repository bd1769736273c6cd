"""A demo population with known truth: people of several personas and their events.

``simulate(SimulationParameters(...))`` returns every delivery (an envelope and the
simulated moment it is sent) in send-time order and the :class:`Truth` the population was
generated from. Pure and deterministic given the seed; ``tenure simulate`` sends the
deliveries through the real ingest path. See ``docs/simulation.md``.
"""

from tenure.simulation.delivery import Delivery
from tenure.simulation.life import Happening, Life
from tenure.simulation.parameters import PersonaShares, SimulationParameters
from tenure.simulation.persona import ACTIVATION_WINDOW_DAYS, Persona
from tenure.simulation.population import Simulation, lives_of, simulate
from tenure.simulation.rhythm import Rhythm, RhythmShares
from tenure.simulation.truth import Truth

__all__ = [
    "ACTIVATION_WINDOW_DAYS",
    "Delivery",
    "Happening",
    "Life",
    "Persona",
    "PersonaShares",
    "Rhythm",
    "RhythmShares",
    "Simulation",
    "SimulationParameters",
    "Truth",
    "lives_of",
    "simulate",
]
