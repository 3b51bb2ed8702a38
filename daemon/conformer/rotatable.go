package conformer

import "qmd/daemon/chem"

// RotatableBonds counts the bonds whose rotation gives a molecule distinct conformers, so
// that a caller can skip the conformer search for a rigid molecule. A bond counts when it
// joins two heavy atoms that each have another heavy neighbour (turning a CH3 or OH only
// moves hydrogens, which the heavy-atom RMSD of Prune ignores anyway), it is not in a
// ring, and it is single. With the usual rules that gives ethane 0, ethanol 0, butane 1,
// diethyl ether 2, ethyl acetate 2, benzene, toluene and cyclohexane 0.
//
// Ring membership comes from the graph: a bond is in a ring when its two atoms are still
// connected after the bond is taken away.
//
// XYZ input carries no bond orders, so they are inferred from the number of neighbours:
//
//   - C with at most 3 neighbours, N with at most 2, and O or S with 1 need a π bond
//     ("unsaturated"); every other atom is taken as saturated.
//   - A bond between two unsaturated atoms is taken as double when some maximum matching
//     of the unsaturated atoms (a Kekulé structure, found with Edmonds' blossom algorithm)
//     uses it. So C=O, C=C in 2-butene or stilbene and C=N are double, while the bond
//     joining the rings of biphenyl or the central bond of butadiene is single and counts.
//   - A bond to a carbon with exactly 2 neighbours (alkyne, nitrile, allene) does not
//     count: the carbon is linear, so turning about the bond changes nothing.
//   - The C–N bond of an amide or thioamide (N with 3 neighbours, C bonded to an O or S
//     that has no other neighbour) is partly double and does not count, which makes DMF 0.
//     Ester C(=O)–O bonds do count, as the usual definition has it.
//
// Charged and hypervalent groups are judged by the same neighbour counts: the C–N bond
// of nitrobenzene counts, the N–O bonds of a nitro group do not (the O are terminal).
// Invalid, repeated or self bonds in the list are ignored.
func RotatableBonds(atoms []chem.Atom, bonds [][2]int) int {
	n := len(atoms)
	adj := neighbours(n, bonds)
	heavy := func(i int) bool { return atoms[i].Element != "H" }
	heavyDegree := make([]int, n)
	for i := range atoms {
		for _, j := range adj[i] {
			if heavy(j) {
				heavyDegree[i]++
			}
		}
	}
	unsat := make([]bool, n)
	for i, a := range atoms {
		unsat[i] = unsaturated(a.Element, len(adj[i]))
	}
	kek := newKekule(adj, unsat)

	count := 0
	for i := range atoms {
		for _, j := range adj[i] {
			if j < i || !heavy(i) || !heavy(j) || heavyDegree[i] < 2 || heavyDegree[j] < 2 {
				continue
			}
			if linear(atoms[i].Element, len(adj[i])) || linear(atoms[j].Element, len(adj[j])) {
				continue
			}
			if amide(atoms, adj, i, j) || amide(atoms, adj, j, i) {
				continue
			}
			if unsat[i] && unsat[j] && kek.canBeDouble(i, j) {
				continue
			}
			if inRing(adj, i, j) {
				continue
			}
			count++
		}
	}
	return count
}

// neighbours builds neighbour lists from a bond list, dropping out-of-range, self and
// repeated pairs, so a hand-made list cannot make the graph code misbehave.
func neighbours(n int, bonds [][2]int) [][]int {
	adj := make([][]int, n)
	seen := make(map[[2]int]bool, len(bonds))
	for _, b := range bonds {
		i, j := min(b[0], b[1]), max(b[0], b[1])
		if i < 0 || j >= n || i == j || seen[[2]int{i, j}] {
			continue
		}
		seen[[2]int{i, j}] = true
		adj[i] = append(adj[i], j)
		adj[j] = append(adj[j], i)
	}
	return adj
}

// unsaturated reports whether an atom with this many neighbours must take part in a π
// bond to reach its usual valence (C 4, N 3, O and S 2).
func unsaturated(element string, degree int) bool {
	switch element {
	case "C":
		return degree <= 3
	case "N":
		return degree <= 2
	case "O", "S":
		return degree == 1
	}
	return false
}

// linear reports an sp carbon: two neighbours, so one triple or two double bonds.
func linear(element string, degree int) bool {
	return element == "C" && degree == 2
}

// amide reports whether n–c is the C–N bond of an amide or thioamide: n a nitrogen with
// three neighbours, c a carbon with three neighbours, one of them an O or S bonded to c
// alone (a carbonyl or thiocarbonyl).
func amide(atoms []chem.Atom, adj [][]int, n, c int) bool {
	if atoms[n].Element != "N" || len(adj[n]) != 3 || atoms[c].Element != "C" ||
		len(adj[c]) != 3 {
		return false
	}
	for _, k := range adj[c] {
		if e := atoms[k].Element; (e == "O" || e == "S") && len(adj[k]) == 1 {
			return true
		}
	}
	return false
}

// inRing reports whether atoms i and j stay connected when their bond is removed.
func inRing(adj [][]int, i, j int) bool {
	seen := make([]bool, len(adj))
	seen[i] = true
	stack := []int{i}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, u := range adj[v] {
			if v == i && u == j || seen[u] {
				continue
			}
			if u == j {
				return true
			}
			seen[u] = true
			stack = append(stack, u)
		}
	}
	return false
}

// kekule answers which bonds between unsaturated atoms can be double. The unsaturated
// atoms and the bonds among them form a graph; a Kekulé structure is a matching in it
// that pairs up as many atoms as possible. A bond can be double when forcing it into the
// matching costs nothing, i.e. when the graph without its two atoms still matches all
// but those two: size(G − i − j) + 1 == size(G).
type kekule struct {
	adj  [][]int // neighbour lists restricted to unsaturated atoms
	best int     // maximum matching size of the whole graph
}

func newKekule(adj [][]int, unsat []bool) *kekule {
	k := &kekule{adj: make([][]int, len(adj))}
	for i := range adj {
		if !unsat[i] {
			continue
		}
		for _, j := range adj[i] {
			if unsat[j] {
				k.adj[i] = append(k.adj[i], j)
			}
		}
	}
	k.best = maxMatching(k.adj, nil)
	return k
}

func (k *kekule) canBeDouble(i, j int) bool {
	removed := make([]bool, len(k.adj))
	removed[i], removed[j] = true, true
	return maxMatching(k.adj, removed)+1 == k.best
}

// maxMatching returns the size of a maximum matching of the graph adj, leaving out the
// vertices marked in removed (which may be nil). It is Edmonds' blossom algorithm:
// from each unmatched vertex a breadth-first search grows an alternating tree; an edge
// between two even vertices closes an odd cycle (a blossom), whose vertices are then
// treated as one; reaching an unmatched vertex gives an augmenting path, which is
// flipped. O(V³), ample for the conjugated systems of one molecule.
func maxMatching(adj [][]int, removed []bool) int {
	m := &blossom{adj: adj, removed: removed}
	n := len(adj)
	m.match = make([]int, n)
	m.parent = make([]int, n)
	m.base = make([]int, n)
	m.even = make([]bool, n)
	m.inBlossom = make([]bool, n)
	m.onPath = make([]bool, n)
	for i := range m.match {
		m.match[i] = -1
	}
	size := 0
	for v := 0; v < n; v++ {
		if m.match[v] == -1 && !m.gone(v) && len(adj[v]) > 0 && m.augment(v) {
			size++
		}
	}
	return size
}

// blossom is the working state of maxMatching.
type blossom struct {
	adj       [][]int
	removed   []bool
	match     []int  // partner of each vertex, or -1
	parent    []int  // tree predecessor of an odd vertex, or -1
	base      []int  // base vertex of the blossom holding each vertex
	even      []bool // vertex is an even (outer) vertex of the current tree
	inBlossom []bool // scratch: blossom bases met while contracting
	onPath    []bool // scratch: bases on the path from one vertex to the root
	queue     []int
}

func (m *blossom) gone(v int) bool { return m.removed != nil && m.removed[v] }

// augment searches for an augmenting path from the unmatched vertex root and, when one
// is found, flips it, growing the matching by one.
func (m *blossom) augment(root int) bool {
	for i := range m.adj {
		m.parent[i], m.base[i], m.even[i] = -1, i, false
	}
	m.even[root] = true
	m.queue = append(m.queue[:0], root)
	for len(m.queue) > 0 {
		v := m.queue[0]
		m.queue = m.queue[1:]
		for _, u := range m.adj[v] {
			if m.gone(u) || m.base[u] == m.base[v] || m.match[v] == u {
				continue
			}
			if u == root || m.match[u] != -1 && m.parent[m.match[u]] != -1 {
				// u is even too: the edge v–u closes a blossom.
				m.contract(v, u)
				continue
			}
			if m.parent[u] != -1 {
				continue // u is already an odd vertex of the tree
			}
			m.parent[u] = v
			if m.match[u] == -1 {
				m.flip(u)
				return true
			}
			w := m.match[u]
			m.even[w] = true
			m.queue = append(m.queue, w)
		}
	}
	return false
}

// flip swaps matched and unmatched edges along the path that ends at the free vertex u.
func (m *blossom) flip(u int) {
	for u != -1 {
		v := m.parent[u]
		next := m.match[v]
		m.match[u], m.match[v] = v, u
		u = next
	}
}

// contract merges the odd cycle closed by the edge v–u into one blossom whose base is
// the nearest common ancestor of v and u, and puts its odd vertices on the queue, since
// inside a blossom every vertex can be reached by an even-length path.
func (m *blossom) contract(v, u int) {
	b := m.commonBase(v, u)
	for i := range m.inBlossom {
		m.inBlossom[i] = false
	}
	m.markPath(v, b, u)
	m.markPath(u, b, v)
	for i := range m.adj {
		if m.inBlossom[m.base[i]] {
			m.base[i] = b
			if !m.even[i] {
				m.even[i] = true
				m.queue = append(m.queue, i)
			}
		}
	}
}

// commonBase walks from v and u towards the root and returns the first blossom base the
// two walks share.
func (m *blossom) commonBase(v, u int) int {
	for i := range m.onPath {
		m.onPath[i] = false
	}
	for {
		v = m.base[v]
		m.onPath[v] = true
		if m.match[v] == -1 {
			break
		}
		v = m.parent[m.match[v]]
	}
	for {
		u = m.base[u]
		if m.onPath[u] {
			return u
		}
		u = m.parent[m.match[u]]
	}
}

// markPath marks the blossoms between v and the new base b and points the parents of the
// odd vertices on the way across the closing edge, so that flip can later route an
// augmenting path through the blossom in either direction.
func (m *blossom) markPath(v, b, child int) {
	for m.base[v] != b {
		m.inBlossom[m.base[v]] = true
		m.inBlossom[m.base[m.match[v]]] = true
		m.parent[v] = child
		child = m.match[v]
		v = m.parent[m.match[v]]
	}
}
