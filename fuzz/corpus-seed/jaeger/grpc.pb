
ž
„
	
GET /"
	
	(2€âÏª:ÜB
otel.scope.namelibJ
€âÏª
eventretry
web
hostnameh1