pub struct MatcherArgs;
