import pandas as pd

from sim.survey import network_measures


def test_measures_on_a_hand_made_network():
    # respondents 1 and 2. 0 -> 1 -> 3 one-way (simple through 1);
    # 4 <-> 2 -> 5 (recip_in through 2); 2 <-> 6 and 4 <-> 2 give a 'both' pair (4,6) and (6,4);
    # 2 -> 5 with 4 <-> 2 ... and 6 <-> 2 -> 5 (recip_in)
    edges = pd.DataFrame({"source": [0, 1, 4, 2, 2, 2, 6], "target": [1, 3, 2, 4, 5, 6, 2]})
    m = network_measures(edges, [1, 2])
    assert m["actors"] == 7 and m["ties"] == 7
    assert m["brokerage_simple"] == 1          # (0, 3) through 1
    assert m["brokerage_recip_in"] == 2        # (4, 5), (6, 5) through 2
    assert m["brokerage_recip_out"] == 0
    assert m["brokerage_both"] == 2            # (4, 6) and (6, 4) through 2
    # dyads with a tie: 0-1, 1-3, 2-4, 2-5, 2-6 ; mutual: 2-4, 2-6
    assert abs(m["reciprocity"] - 2 / 5) < 1e-12
    assert abs(m["reciprocity_arcs"] - 4 / 7) < 1e-12
    assert m["components"] == 2                 # {0,1,3} and {2,4,5,6}


def test_closed_triads_are_not_brokerage():
    edges = pd.DataFrame({"source": [0, 1, 0], "target": [1, 2, 2]})
    m = network_measures(edges, [1])
    assert m["brokerage_simple"] == 0
